/*
 * failpoint.h - deterministic crash points for the crash tests.
 *
 * SLUICE_CRASH_AT=<name>[:<n>] makes the process kill itself with SIGKILL
 * the n-th time (default 1st) it passes failpoint <name>, exactly as a
 * `kill -9` landing there would. Names in use: checkpoint.before_commit,
 * checkpoint.after_commit, file.after_rename, file.mid_publish,
 * file.after_publish. Unset, a failpoint costs one predictable branch.
 */
#ifndef SL_FAILPOINT_H
#define SL_FAILPOINT_H

void sl_failpoint(const char *name);

#endif
