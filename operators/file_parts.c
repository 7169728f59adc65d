/*
 * file_parts.c - sink.file's pending part, its publication at checkpoint
 * completion and its recovery (file_parts.h).
 */
#include "file_parts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failpoint.h"

typedef struct parts_rec {
    uint64_t id, published, part_len;
} parts_rec;

void file_parts_init(file_parts *fp)
{
    memset(fp, 0, sizeof *fp);
    fp->pending_fd = -1;
    fp->path_fd = -1;
}

void file_parts_fini(file_parts *fp)
{
    struct stat st;
    if (fp->pending_fd >= 0 && fstat(fp->pending_fd, &st) == 0 && st.st_size == 0)
        unlink(fp->pending); /* nothing pending: leave only the output */
    if (fp->pending_fd >= 0)
        close(fp->pending_fd);
    if (fp->path_fd >= 0)
        close(fp->path_fd);
    free(fp->path);
    free(fp->pending);
    file_parts_init(fp);
}

static char *part_name(const char *path, uint64_t id)
{
    char *s;
    return asprintf(&s, "%s.part-%" PRIu64, path, id) < 0 ? NULL : s;
}

static int fail(sl_ctx *ctx, const char *what, const char *file)
{
    ctx->host->log(ctx, SL_LOG_ERROR, "%s '%s': %s", what, file, strerror(errno));
    return SL_ERROR;
}

/* fsync the directory holding path, so a rename or unlink in it is durable. */
static int sync_dir(sl_ctx *ctx, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return SL_ERROR;
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? SL_OK : fail(ctx, "cannot sync directory", dir);
    if (fd >= 0)
        close(fd);
    free(copy);
    return rc;
}

/* Copy len bytes of file `from` to path at offset `at`, cut path there, sync, remove `from`. */
static int publish_file(file_parts *fp, sl_ctx *ctx, const char *from, uint64_t at, uint64_t len)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail(ctx, "cannot open the part", from);
    loff_t off_in = 0, off_out = (loff_t)at;
    uint64_t left = len;
    int rc = SL_OK;
    while (left > 0 && rc == SL_OK) {
        ssize_t n = copy_file_range(in, &off_in, fp->path_fd, &off_out, left, 0);
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
            char buf[1 << 16]; /* a file system that cannot copy in the kernel */
            ssize_t r = pread(in, buf, left < sizeof buf ? left : sizeof buf, off_in);
            n = r > 0 ? pwrite(fp->path_fd, buf, (size_t)r, off_out) : -1;
            if (r == 0)
                errno = EIO; /* the part is shorter than its record */
            if (n > 0) {
                off_in += n;
                off_out += n;
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = fail(ctx, "cannot publish the part", from);
        else
            left -= (uint64_t)n;
    }
    sl_failpoint("file.mid_publish");
    if (rc == SL_OK && (ftruncate(fp->path_fd, (off_t)(at + len)) != 0 || fdatasync(fp->path_fd) != 0))
        rc = fail(ctx, "cannot write", fp->path);
    close(in);
    if (rc == SL_OK && unlink(from) != 0)
        rc = fail(ctx, "cannot remove the published part", from);
    sl_failpoint("file.after_publish");
    return rc;
}

/* Remove <path>.pending and every <path>.part-N: output of no complete checkpoint. */
static int remove_stale(file_parts *fp, sl_ctx *ctx)
{
    if (unlink(fp->pending) != 0 && errno != ENOENT)
        return fail(ctx, "cannot remove", fp->pending);
    char *copy = strdup(fp->path), *copy2 = strdup(fp->path);
    if (!copy || !copy2) {
        free(copy);
        free(copy2);
        return SL_ERROR;
    }
    const char *dir = dirname(copy), *base = basename(copy2);
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s.part-", base);
    size_t plen = strlen(prefix);
    int rc = SL_OK;
    DIR *d = opendir(dir);
    if (!d)
        rc = fail(ctx, "cannot list", dir);
    for (struct dirent *e; rc == SL_OK && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        ctx->host->log(ctx, SL_LOG_INFO, "removing '%s': output of no complete checkpoint", full);
        if (unlink(full) != 0)
            rc = fail(ctx, "cannot remove", full);
    }
    if (d)
        closedir(d);
    free(copy);
    free(copy2);
    return rc;
}

static int read_record(file_parts *fp, sl_ctx *ctx, uint64_t id)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0)
        return SL_ERROR;
    const void *v;
    size_t vlen;
    int rc = h->kv_get(ctx, fp->db, "rec", 3, &v, &vlen);
    parts_rec r;
    if (rc == 0 && vlen == sizeof r)
        memcpy(&r, v, sizeof r);
    h->kv_abort(ctx);
    if (rc != 0 || vlen != sizeof r || r.id != id) {
        h->log(ctx, SL_LOG_ERROR, "no output record for checkpoint %" PRIu64, id);
        return SL_ERROR;
    }
    fp->have_record = 1;
    fp->rec_published = r.published;
    fp->rec_part_id = r.id;
    fp->rec_part_len = r.part_len;
    return SL_OK;
}

int file_parts_restore(file_parts *fp, sl_ctx *ctx, const char *path, uint64_t id)
{
    (void)path;
    if (!fp->db && !(fp->db = ctx->host->kv_open(ctx, "parts")))
        return SL_ERROR;
    return read_record(fp, ctx, id);
}

/* Make path hold exactly what the restored checkpoint published. */
static int recover(file_parts *fp, sl_ctx *ctx)
{
    uint64_t at = fp->rec_published, len = fp->rec_part_len;
    char *part = part_name(fp->path, fp->rec_part_id);
    if (!part)
        return SL_ERROR;
    int rc;
    if (len > 0 && access(part, F_OK) == 0) { /* the crash came before its publication ended */
        rc = publish_file(fp, ctx, part, at, len);
    } else {
        struct stat st;
        if (fstat(fp->path_fd, &st) != 0) {
            rc = fail(ctx, "cannot stat", fp->path);
        } else if ((uint64_t)st.st_size < at + len) {
            ctx->host->log(ctx, SL_LOG_ERROR,
                           "'%s' holds %lld bytes, but checkpoint %" PRIu64 " published %" PRIu64
                           ": it was changed outside sluice; run with --fresh to start over",
                           fp->path, (long long)st.st_size, fp->rec_part_id, at + len);
            rc = SL_ERROR;
        } else {
            /* anything after it came from a run that crashed before its checkpoint */
            rc = ftruncate(fp->path_fd, (off_t)(at + len)) == 0 && fdatasync(fp->path_fd) == 0
                     ? SL_OK
                     : fail(ctx, "cannot truncate", fp->path);
        }
    }
    free(part);
    fp->published = at + len;
    return rc;
}

int file_parts_start(file_parts *fp, sl_ctx *ctx, const char *path, int restored, int append)
{
    if (!(fp->path = strdup(path)) || asprintf(&fp->pending, "%s.pending", path) < 0) {
        fp->pending = NULL;
        return SL_ERROR;
    }
    if (!fp->db && !(fp->db = ctx->host->kv_open(ctx, "parts")))
        return SL_ERROR;
    fp->path_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fp->path_fd < 0)
        return fail(ctx, "cannot open for writing", path);
    int rc;
    if (restored && fp->have_record) {
        rc = recover(fp, ctx);
    } else {
        struct stat st;
        rc = append ? (fstat(fp->path_fd, &st) == 0 ? SL_OK : fail(ctx, "cannot stat", path))
                    : (ftruncate(fp->path_fd, 0) == 0 ? SL_OK : fail(ctx, "cannot truncate", path));
        fp->published = append && rc == SL_OK ? (uint64_t)st.st_size : 0;
    }
    if (rc == SL_OK)
        rc = remove_stale(fp, ctx);
    if (rc != SL_OK)
        return rc;
    fp->pending_fd = open(fp->pending, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    return fp->pending_fd >= 0 ? SL_OK : fail(ctx, "cannot open for writing", fp->pending);
}

int file_parts_close(file_parts *fp, sl_ctx *ctx, uint64_t id)
{
    const sl_host *h = ctx->host;
    struct stat st;
    if (fstat(fp->pending_fd, &st) != 0)
        return fail(ctx, "cannot stat", fp->pending);
    fp->part_id = id;
    fp->part_len = (uint64_t)st.st_size;
    if (fp->part_len > 0) {
        char *part = part_name(fp->path, id);
        int rc = part && fdatasync(fp->pending_fd) == 0 && rename(fp->pending, part) == 0
                     ? SL_OK
                     : fail(ctx, "cannot close the pending part", fp->pending);
        free(part);
        if (rc == SL_OK)
            rc = sync_dir(ctx, fp->path);
        if (rc != SL_OK)
            return rc;
        sl_failpoint("file.after_rename");
        close(fp->pending_fd);
        fp->pending_fd = open(fp->pending, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fp->pending_fd < 0)
            return fail(ctx, "cannot open for writing", fp->pending);
    }
    parts_rec r = {id, fp->published, fp->part_len};
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (h->kv_put(ctx, fp->db, "rec", 3, &r, sizeof r) != 0 || h->kv_commit(ctx) != 0) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    return SL_OK;
}

int file_parts_publish(file_parts *fp, sl_ctx *ctx, uint64_t id)
{
    if (fp->part_id != id || fp->part_len == 0)
        return SL_OK;
    char *part = part_name(fp->path, id);
    int rc = part ? publish_file(fp, ctx, part, fp->published, fp->part_len) : SL_ERROR;
    free(part);
    if (rc == SL_OK) {
        fp->published += fp->part_len;
        fp->part_len = 0;
        fp->part_id = 0;
    }
    return rc;
}
