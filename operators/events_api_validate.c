/*
 * events_api_validate.c - a published event checked against CloudEvents 1.0
 * (the JSON event format) and written as the event log stores it.
 *
 * The body was parsed by the engine's JSON parser into msgpack; each event is
 * a map read in place, twice: once to check every attribute (the first
 * problem found is the reason given), once to write the stored event. The
 * stored event is the request's map with its pairs in their order, except
 * that an attribute whose value is null is left out (the JSON format treats
 * null as absent), `time` becomes a msgpack timestamp (the engine's time
 * type, what the log indexes), and an event without `time` gets the request's
 * receive time. Nothing else is added or renamed, so GET returns what was
 * published, and a pipeline reading the log with source.log sees the
 * CloudEvents attribute names the engine's events use anyway.
 *
 * The log's own limits are checked here too (id at most 480 bytes, type at
 * most 256), so an append never refuses an event of a request that was
 * answered as valid: a batch is all or nothing.
 */
#include <stdio.h>
#include <string.h>

#include "events_api.h"
#include "timefmt.h"

const char evapi_oom[] = "out of memory";

enum {
    A_SPECVERSION,
    A_ID,
    A_SOURCE,
    A_TYPE,
    A_DATACONTENTTYPE,
    A_DATASCHEMA,
    A_SUBJECT,
    A_TIME,
    A_DATA,
    A_DATA_BASE64,
    A_EXT
};

static const char *const attr_names[] = {
    "specversion", "id",      "source", "type", "datacontenttype",
    "dataschema",  "subject", "time",   "data", "data_base64"};

static int attr_kind(const char *s, size_t n)
{
    int k;
    switch (n) { /* the candidate of this length (one per length, but for 4) */
    case 2:
        k = A_ID;
        break;
    case 4:
        k = s[0] == 't' && s[1] == 'y' ? A_TYPE : s[0] == 't' ? A_TIME : A_DATA;
        break;
    case 6:
        k = A_SOURCE;
        break;
    case 7:
        k = A_SUBJECT;
        break;
    case 10:
        k = A_DATASCHEMA;
        break;
    case 11:
        k = s[0] == 's' ? A_SPECVERSION : A_DATA_BASE64;
        break;
    case 15:
        k = A_DATACONTENTTYPE;
        break;
    default:
        return A_EXT;
    }
    return memcmp(attr_names[k], s, n) == 0 ? k : A_EXT;
}

/* CloudEvents attribute names: lower-case ASCII letters and digits, 1 to 20 of them. */
static int name_ok(const char *s, size_t n)
{
    if (n < 1 || n > 20) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
    return 1;
}

/*
 * CloudEvents strings exclude control characters (U+0000-U+001F, U+007F-U+009F);
 * the parser already checked the UTF-8.
 */
static int text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return 0;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return 0;
    }
    return 1;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986: unreserved, gen-delims and sub-delims ('%' is checked apart). */
static int uri_char(char c)
{
    if (is_alpha(c) || is_digit(c)) return 1;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case ':':
    case '/':
    case '?':
    case '#':
    case '[':
    case ']':
    case '@':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
        return 1;
    default:
        return 0;
    }
}

/*
 * An RFC 3986 URI-reference, checked for its characters (unreserved, reserved,
 * %HH) and its scheme: a ':' before any '/', '?' or '#' ends a scheme, which
 * must be ALPHA *(ALPHA / DIGIT / + / - / .) (a relative reference cannot have
 * a ':' in its first segment). `absolute`: a scheme is required (a URI).
 */
static int uri_ok(const char *s, size_t n, int absolute)
{
    int hashes = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return 0;
            if (!is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
            i += 2;
        } else if (c == '#') {
            if (++hashes > 1) return 0;
        } else if (!uri_char(c)) {
            return 0;
        }
    }
    size_t i = 0;
    while (i < n && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    if (i < n && s[i] == ':') {
        if (i == 0 || !is_alpha(s[0])) return 0;
        for (size_t j = 1; j < i; j++)
            if (!is_alpha(s[j]) && !is_digit(s[j]) && s[j] != '+' && s[j] != '-' && s[j] != '.')
                return 0;
        return 1;
    }
    return !absolute;
}

/* An RFC 7230 token character. */
static int tchar(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* A media type (RFC 2046, as RFC 7231 writes it): type "/" subtype, then parameters. */
static int media_type_ok(const char *s, size_t n)
{
    size_t i = 0, t = 0;
    while (i < n && tchar(s[i]))
        i++, t++;
    if (t == 0 || i == n || s[i] != '/') return 0;
    i++;
    t = 0;
    while (i < n && tchar(s[i]))
        i++, t++;
    if (t == 0) return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == n || (s[i] == ';' && text_ok(s + i, n - i));
}

int evapi_base64_ok(const char *s, size_t n)
{
    size_t pad = 0;
    while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
        pad++;
    if (pad && n % 4 != 0) return 0;
    size_t body = n - pad;
    if (body % 4 == 1) return 0;
    for (size_t i = 0; i < body; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '+' && s[i] != '/') return 0;
    return 1;
}

/* A quoted attribute name for a reason: at most 40 bytes of it. */
#define NAME_FMT "'%.*s%s'"
#define NAME_ARG(k) (int)((k).len > 40 ? 40 : (k).len), (k).ptr, (k).len > 40 ? "..." : ""

typedef struct key_ref {
    const char *ptr;
    uint32_t len;
} key_ref;

/* A pair of the event as read by the check: what the write copies. */
typedef struct pair_ref {
    const uint8_t *at;
    uint32_t len;
    uint8_t skip, time; /* null (left out); the time attribute (rewritten) */
} pair_ref;

/* Check one attribute (kind, name k, value v read at its header). NULL, or the reason. */
static const char *check_attr(int kind, key_ref k, const sl_mp_val *v, int64_t *time_ns, char *why,
                              size_t whylen)
{
    int str = v->type == SL_MP_STR;
    const char *s = v->v.str.ptr;
    size_t n = str ? v->v.str.len : 0;
    switch (kind) {
    case A_SPECVERSION:
        if (!str || n != 3 || memcmp(s, "1.0", 3) != 0)
            return "'specversion' must be \"1.0\" (CloudEvents 1.0)";
        return NULL;
    case A_ID:
        if (!str || n == 0) return "'id' must be a non-empty string";
        if (n > SL_EVENTLOG_MAX_ID) return "'id' is longer than 480 bytes";
        return text_ok(s, n) ? NULL : "'id' contains control characters";
    case A_SOURCE:
        if (!str || n == 0 || !uri_ok(s, n, 0))
            return "'source' must be a non-empty URI-reference (RFC 3986)";
        return NULL;
    case A_TYPE:
        if (!str || n == 0) return "'type' must be a non-empty string";
        if (n > SL_EVENTLOG_MAX_TYPE) return "'type' is longer than 256 bytes";
        return text_ok(s, n) ? NULL : "'type' contains control characters";
    case A_DATACONTENTTYPE:
        if (!str || !media_type_ok(s, n))
            return "'datacontenttype' must be a media type (RFC 2046), e.g. application/json";
        return NULL;
    case A_DATASCHEMA:
        if (!str || n == 0 || !uri_ok(s, n, 1))
            return "'dataschema' must be an absolute URI (RFC 3986)";
        return NULL;
    case A_SUBJECT:
        if (!str || n == 0) return "'subject' must be a non-empty string";
        return text_ok(s, n) ? NULL : "'subject' contains control characters";
    case A_TIME:
        if (!str || sl_time_parse(s, n, time_ns) != 0)
            return "'time' must be an RFC 3339 timestamp, e.g. 2026-01-01T12:00:00Z";
        return NULL;
    case A_DATA:
        return NULL;
    case A_DATA_BASE64:
        if (!str || !evapi_base64_ok(s, n))
            return "'data_base64' must be a base64 string (RFC 4648)";
        return NULL;
    default:
        break;
    }
    if (!name_ok(k.ptr, k.len)) {
        snprintf(why, whylen,
                 NAME_FMT " is not a CloudEvents attribute name (1 to 20 lower-case letters and "
                          "digits)",
                 NAME_ARG(k));
        return why;
    }
    int ok = (str && text_ok(s, n)) || v->type == SL_MP_BOOL ||
             (v->type == SL_MP_UINT && v->v.u <= INT32_MAX) ||
             (v->type == SL_MP_INT && v->v.i >= INT32_MIN);
    if (!ok) {
        snprintf(why, whylen,
                 "extension " NAME_FMT " must be a string, a boolean or an integer of 32 bits",
                 NAME_ARG(k));
        return why;
    }
    return NULL;
}

const char *evapi_event_store(const uint8_t **pp, const uint8_t *end, int64_t recv_ns, sl_wbuf *out,
                              char *why, size_t whylen)
{
    const uint8_t *p = *pp;
    sl_mp_val m;
    if (sl_mp_skip(pp, end) != 0 || sl_mp_read(&p, end, &m) != 0)
        return "the event is not valid msgpack";
    if (m.type != SL_MP_MAP) return "an event must be a JSON object";
    if (m.v.n > EVAPI_MAX_ATTRS) {
        snprintf(why, whylen, "the event has %u members, more than %d", m.v.n, EVAPI_MAX_ATTRS);
        return why;
    }
    key_ref keys[EVAPI_MAX_ATTRS];
    pair_ref pairs[EVAPI_MAX_ATTRS];
    unsigned present = 0; /* bit per kind below A_EXT, non-null values only */
    uint32_t kept = 0;
    int64_t time_ns = 0;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        pairs[i] = (pair_ref){p, 0, 0, 0};
        if (sl_mp_read(&p, end, &k) != 0) return "the event is not valid msgpack";
        if (k.type != SL_MP_STR || k.v.str.len == 0)
            return "an attribute name is empty or not a string";
        keys[i] = (key_ref){k.v.str.ptr, k.v.str.len};
        for (uint32_t j = 0; j < i; j++)
            if (keys[j].len == k.v.str.len && keys[j].ptr[0] == k.v.str.ptr[0] &&
                memcmp(keys[j].ptr, k.v.str.ptr, k.v.str.len) == 0) {
                snprintf(why, whylen, "attribute " NAME_FMT " appears twice", NAME_ARG(keys[i]));
                return why;
            }
        const uint8_t *vp = p;
        if (sl_mp_read(&vp, end, &v) != 0 || sl_mp_skip(&p, end) != 0)
            return "the event is not valid msgpack";
        pairs[i].len = (uint32_t)(p - pairs[i].at);
        int kind = attr_kind(k.v.str.ptr, k.v.str.len);
        pairs[i].time = kind == A_TIME;
        if (v.type == SL_MP_NIL) {
            pairs[i].skip = 1;
            if (kind == A_EXT && !name_ok(k.v.str.ptr, k.v.str.len)) {
                snprintf(why, whylen,
                         NAME_FMT " is not a CloudEvents attribute name (1 to 20 lower-case "
                                  "letters and digits)",
                         NAME_ARG(keys[i]));
                return why;
            }
            continue; /* null: absent */
        }
        const char *bad = check_attr(kind, keys[i], &v, &time_ns, why, whylen);
        if (bad) return bad;
        if (kind < A_EXT) present |= 1u << kind;
        kept++;
    }
    static const int required[] = {A_SPECVERSION, A_ID, A_SOURCE, A_TYPE};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!(present & (1u << required[i]))) {
            snprintf(why, whylen, "'%s' is required", attr_names[required[i]]);
            return why;
        }
    if ((present & (1u << A_DATA)) && (present & (1u << A_DATA_BASE64)))
        return "an event has 'data' or 'data_base64', not both";

    /* write it: the same pairs, nulls left out, time as a timestamp (added if absent) */
    int has_time = (present & (1u << A_TIME)) != 0;
    size_t start = out->len;
    int bad = sl_mp_write_map(out, kept + (has_time ? 0 : 1));
    for (uint32_t i = 0; i < m.v.n && !bad; i++) {
        if (pairs[i].skip) continue;
        if (pairs[i].time)
            bad |= sl_mp_write_str(out, "time", 4) | sl_mp_write_timestamp(out, time_ns);
        else
            bad |= sl_wbuf_append(out, pairs[i].at, pairs[i].len);
    }
    if (!has_time && !bad)
        bad |= sl_mp_write_str(out, "time", 4) | sl_mp_write_timestamp(out, recv_ns);
    if (bad) {
        out->len = start;
        return evapi_oom;
    }
    return NULL;
}
