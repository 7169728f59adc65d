/*
 * json_parse.cc - JSON text -> msgpack, through simdjson On-Demand behind the C interface of
 * json.h.
 *
 * Design: one simdjson On-Demand parser per sl_json_parser, reused for every text, so the
 * steady state allocates nothing (the parser's buffers only grow when a longer text arrives;
 * sl_json_parser_new pre-sizes them for 64 KiB). The walk writes msgpack while simdjson
 * iterates, in document order; nothing is built in between. Containers are written with a
 * one-byte fix header whose count is patched when the container closes; the rare container
 * with more than 15 members is shifted right by 2 or 4 bytes to make room for a map16/map32
 * (array16/array32) header, so the output is always the smallest msgpack encoding.
 *
 * Invariants:
 * - No C++ exception leaves this file: simdjson is used through its error-code API only,
 *   allocation is new (std::nothrow), and each C entry point also catches (...) as a backstop.
 * - On any error out->len is restored, so a failed text leaves no partial bytes.
 * - Nesting is limited to SL_JSON_MAX_DEPTH levels (the walk recurses once per level).
 * - Numbers: integers in [INT64_MIN, UINT64_MAX] are msgpack ints; all other numbers
 *   (fraction, exponent, out of range integer) are float64.
 *
 * Stage 1 (structural indexing, UTF-8 validation) runs in libsimdjson with runtime CPU
 * dispatch; the On-Demand stage 2 is compiled into this file for the target of the build
 * (docs/json.md, "Build flags").
 */
#include "json.h"
#include "timefmt.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

/*
 * simdjson switches on its development checks whenever NDEBUG is unset, and
 * our builds keep assert() on. Those checks assert (instead of failing the
 * parse) when nesting passes max_depth, which we report as an error
 * ourselves (SL_JSON_MAX_DEPTH), and they slow every parse down.
 */
#define SIMDJSON_DEVELOPMENT_CHECKS 0
#include <simdjson.h>

namespace od = simdjson::ondemand;
using simdjson::error_code;

/* Deepest nesting of arrays/objects accepted; the walk recurses once per level. */
#define SL_JSON_MAX_DEPTH 128
/* Initial parser capacity: texts up to this size never make the parser allocate. */
#define PARSER_INITIAL_CAPACITY (64 * 1024)

static_assert(simdjson::SIMDJSON_PADDING <= SL_JSON_PADDING, "SL_JSON_PADDING below simdjson's");

struct sl_json_parser {
    od::parser parser;
};

namespace
{

/*
 * Errors of our own travel as simdjson codes through the walk: DEPTH_ERROR (too deep),
 * MEMALLOC (out of memory), and INCORRECT_TYPE with bad_time set (bad "time" string).
 */
struct walk {
    sl_wbuf *out;
    const char *bad_time; /* the offending "time" string, when bad_time_len is set */
    size_t bad_time_len;
    bool has_bad_time;
    bool not_object; /* an event that is not a JSON object */
};

/* Put a one-byte placeholder for a container header; returns its offset. */
inline error_code open_container(sl_wbuf *b, size_t *pos)
{
    if (sl_wbuf_reserve(b, 1) != 0) return simdjson::MEMALLOC;
    *pos = b->len;
    b->data[b->len++] = 0;
    return simdjson::SUCCESS;
}

/*
 * Write the real header at `pos` for a container of `n` members now that they are all written.
 * fix is 0x80 (map) or 0x90 (array); c16/c32 the wider header bytes.
 */
error_code close_container(sl_wbuf *b, size_t pos, uint64_t n, uint8_t fix, uint8_t c16,
                           uint8_t c32)
{
    if (n <= 15) {
        b->data[pos] = (uint8_t)(fix | n);
        return simdjson::SUCCESS;
    }
    if (n > UINT32_MAX) return simdjson::CAPACITY;
    size_t extra = n <= 0xffff ? 2 : 4;
    if (sl_wbuf_reserve(b, extra) != 0) return simdjson::MEMALLOC;
    uint8_t *h = b->data + pos;
    memmove(h + 1 + extra, h + 1, b->len - pos - 1);
    b->len += extra;
    if (extra == 2) {
        h[0] = c16;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
    } else {
        h[0] = c32;
        h[1] = (uint8_t)(n >> 24);
        h[2] = (uint8_t)(n >> 16);
        h[3] = (uint8_t)(n >> 8);
        h[4] = (uint8_t)n;
    }
    return simdjson::SUCCESS;
}

inline error_code put_str(sl_wbuf *b, std::string_view s)
{
    return sl_mp_write_str(b, s.data(), s.size()) == 0 ? simdjson::SUCCESS : simdjson::MEMALLOC;
}

/*
 * simdjson 3.0.1 computes wrong doubles once a number has more than 19 mantissa digits
 * (leading zeros included): get_number().get_double() returns 0 (simdjson issue #2099) and
 * get_double() can overflow its accumulator ("0.95000000000000000000" -> 0.0277, #2093); and
 * get_number() refuses integers beyond uint64. Numbers that long are rare (a double needs at
 * most 17 significant digits), so they take a slow path: simdjson still validates the syntax,
 * strtod computes the value. Below the bound simdjson's own exact parser is used.
 */
#define FAST_DIGITS_MAX 18

/* Digits of the mantissa (before any exponent) at the start of a number token. */
inline size_t mantissa_digits(std::string_view t)
{
    size_t n = 0;
    for (char c : t) {
        if (c >= '0' && c <= '9')
            n++;
        else if (c != '-' && c != '.')
            break;
    }
    return n;
}

/* The text of the current token; value and document spell this differently. */
inline error_code raw_token(od::value &v, std::string_view &raw)
{
    raw = v.raw_json_token();
    return simdjson::SUCCESS;
}
inline error_code raw_token(od::document &d, std::string_view &raw)
{
    return d.raw_json_token().get(raw);
}

/* Slow path for numbers of more than FAST_DIGITS_MAX mantissa digits; see above. */
template <typename V> error_code write_long_number(walk &w, V &v, std::string_view raw)
{
    od::number n;
    double d;
    error_code e = v.get_number().get(n);
    if (e == simdjson::SUCCESS && n.get_number_type() == od::number_type::signed_integer)
        return sl_mp_write_int(w.out, n.get_int64()) == 0 ? simdjson::SUCCESS : simdjson::MEMALLOC;
    if (e == simdjson::SUCCESS && n.get_number_type() == od::number_type::unsigned_integer)
        return sl_mp_write_uint(w.out, n.get_uint64()) == 0 ? simdjson::SUCCESS
                                                            : simdjson::MEMALLOC;
    if (e == simdjson::NUMBER_ERROR && (e = v.get_double().get(d))) /* > uint64: validate */
        return e;
    if (e && e != simdjson::NUMBER_ERROR) return e;
    /* The syntax is valid JSON, so strtod reads exactly the token (copied: it needs a NUL). */
    size_t len = 0;
    while (len < raw.size() && (std::strchr("0123456789+-.eE", raw[len]) && raw[len] != '\0'))
        len++;
    char small[128];
    char *buf = len < sizeof small ? small : static_cast<char *>(std::malloc(len + 1));
    if (!buf) return simdjson::MEMALLOC;
    memcpy(buf, raw.data(), len);
    buf[len] = '\0';
    d = std::strtod(buf, nullptr);
    if (buf != small) std::free(buf);
    return sl_mp_write_double(w.out, d) == 0 ? simdjson::SUCCESS : simdjson::MEMALLOC;
}

/*
 * Strings without a backslash are copied straight from the input instead of being unescaped
 * into the parser's string buffer: stage 1 has already validated the whole text (UTF-8, no raw
 * control characters), and their extent is known from the structural index, so this saves a
 * call and a copy per string. Returns true and sets *s (then the value is consumed), or false
 * if the caller must unescape.
 */
inline bool plain_string(od::value &v, std::string_view *s)
{
    std::string_view tok = v.raw_json_token(); /* '"' ... '"' then any whitespace */
    size_t q = tok.size();
    while (q > 1 && tok[q - 1] != '"')
        q--;
    if (q < 2 || memchr(tok.data() + 1, '\\', q - 2)) return false;
    od::raw_json_string consumed;
    if (v.get_raw_json_string().get(consumed)) return false;
    *s = tok.substr(1, q - 2);
    return true;
}
inline bool plain_string(od::document &, std::string_view *)
{
    return false;
}

/* The same for a member's key: it ends at the '"' before the ':' that precedes the value. */
inline bool plain_key(od::field &f, od::value &v, std::string_view *key)
{
    const char *k = reinterpret_cast<const char *>(f.key().raw());
    const char *p = v.raw_json_token().data();
    while (p > k && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r'))
        p--;
    if (p <= k || p[-1] != ':') return false;
    p--;
    while (p > k && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r'))
        p--;
    if (p <= k || p[-1] != '"') return false;
    p--;
    if (memchr(k, '\\', (size_t)(p - k))) return false;
    *key = std::string_view(k, (size_t)(p - k));
    return true;
}

/* Write one scalar (number, string, bool, null) of type t; V is od::value or od::document. */
template <typename V> error_code write_scalar(walk &w, V &v, od::json_type t)
{
    error_code e;
    int rc = 0;
    switch (t) {
    case od::json_type::string: {
        std::string_view s;
        if (plain_string(v, &s)) return put_str(w.out, s);
        if ((e = v.get_string().get(s))) return e;
        return put_str(w.out, s);
    }
    case od::json_type::number: {
        od::number n;
        std::string_view raw;
        if ((e = raw_token(v, raw))) return e;
        if (mantissa_digits(raw) > FAST_DIGITS_MAX) return write_long_number(w, v, raw);
        if ((e = v.get_number().get(n))) return e;
        switch (n.get_number_type()) {
        case od::number_type::signed_integer:
            rc = sl_mp_write_int(w.out, n.get_int64());
            break;
        case od::number_type::unsigned_integer:
            rc = sl_mp_write_uint(w.out, n.get_uint64());
            break;
        default:
            rc = sl_mp_write_double(w.out, n.get_double());
            break;
        }
        break;
    }
    case od::json_type::boolean: {
        bool x;
        if ((e = v.get_bool().get(x))) return e;
        rc = sl_mp_write_bool(w.out, x);
        break;
    }
    case od::json_type::null: {
        bool isnull;
        if ((e = v.is_null().get(isnull))) return e;
        if (!isnull) return simdjson::N_ATOM_ERROR;
        rc = sl_mp_write_nil(w.out);
        break;
    }
    default:
        return simdjson::TAPE_ERROR;
    }
    return rc == 0 ? simdjson::SUCCESS : simdjson::MEMALLOC;
}

error_code write_value(walk &w, od::value v, int depth);

/* Write an object's members in order; `event` marks the top level of an event (time member). */
error_code write_object(walk &w, od::object o, int depth, bool event)
{
    size_t pos;
    uint64_t n = 0;
    error_code e;
    if (depth > SL_JSON_MAX_DEPTH) return simdjson::DEPTH_ERROR;
    if ((e = open_container(w.out, &pos))) return e;
    for (auto field : o) {
        std::string_view key;
        od::field f;
        if ((e = std::move(field).get(f))) return e;
        od::value &v = f.value();
        if (!plain_key(f, v, &key) && (e = f.unescaped_key().get(key))) return e;
        if ((e = put_str(w.out, key))) return e;
        if (event && key.size() == 4 && memcmp(key.data(), "time", 4) == 0) {
            od::json_type t;
            if ((e = v.type().get(t))) return e;
            if (t == od::json_type::string) {
                std::string_view s;
                int64_t ns;
                if ((e = v.get_string().get(s))) return e;
                if (sl_time_parse(s.data(), s.size(), &ns) != 0) {
                    w.has_bad_time = true;
                    w.bad_time = s.data();
                    w.bad_time_len = s.size();
                    return simdjson::INCORRECT_TYPE;
                }
                if (sl_mp_write_timestamp(w.out, ns) != 0) return simdjson::MEMALLOC;
                n++;
                continue;
            }
        }
        if ((e = write_value(w, v, depth))) return e;
        n++;
    }
    return close_container(w.out, pos, n, 0x80, 0xde, 0xdf);
}

error_code write_array(walk &w, od::array a, int depth)
{
    size_t pos;
    uint64_t n = 0;
    error_code e;
    if (depth > SL_JSON_MAX_DEPTH) return simdjson::DEPTH_ERROR;
    if ((e = open_container(w.out, &pos))) return e;
    for (auto elem : a) {
        od::value v;
        if ((e = elem.get(v))) return e;
        if ((e = write_value(w, v, depth))) return e;
        n++;
    }
    return close_container(w.out, pos, n, 0x90, 0xdc, 0xdd);
}

/* Write any value found at nesting level `depth` (its children are at depth + 1). */
error_code write_value(walk &w, od::value v, int depth)
{
    od::json_type t;
    error_code e;
    if ((e = v.type().get(t))) return e;
    if (t == od::json_type::object) {
        od::object o;
        if ((e = v.get_object().get(o))) return e;
        return write_object(w, o, depth + 1, false);
    }
    if (t == od::json_type::array) {
        od::array a;
        if ((e = v.get_array().get(a))) return e;
        return write_array(w, a, depth + 1);
    }
    return write_scalar(w, v, t);
}

/* The whole document: an object, an array or a scalar, then nothing but whitespace. */
error_code write_document(walk &w, od::document &doc, bool event)
{
    od::json_type t;
    error_code e;
    if ((e = doc.type().get(t))) return e;
    if (t == od::json_type::object) {
        od::object o;
        if ((e = doc.get_object().get(o))) return e;
        e = write_object(w, o, 1, event);
    } else if (event) {
        w.not_object = true;
        return simdjson::INCORRECT_TYPE;
    } else if (t == od::json_type::array) {
        od::array a;
        if ((e = doc.get_array().get(a))) return e;
        e = write_array(w, a, 1);
    } else {
        e = write_scalar(w, doc, t);
    }
    if (e) return e;
    /* 3.0.1 has no document::at_end(): a location past the last token means the end. */
    const char *at;
    e = doc.current_location().get(at);
    return e == simdjson::OUT_OF_BOUNDS ? simdjson::SUCCESS : simdjson::TRAILING_CONTENT;
}

/* Byte offset where the iterator stopped, or -1 when simdjson cannot say. */
long error_offset(od::document &doc, const char *json, size_t len)
{
    const char *at = nullptr;
    if (doc.current_location().get(at) != simdjson::SUCCESS || at < json || at > json + len)
        return -1;
    return (long)(at - json);
}

void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Error text of a simdjson code without its "CODE_NAME: " prefix. */
const char *simdjson_reason(error_code e)
{
    const char *m = simdjson::error_message(e);
    const char *colon = strstr(m, ": ");
    return colon ? colon + 2 : m;
}

int convert(sl_json_parser *p, const char *json, size_t len, size_t capacity, int event,
            sl_wbuf *out, char *err, size_t errlen)
{
    size_t old_len = out->len;
    walk w = {out, nullptr, 0, false, false};
    od::document doc;
    error_code e = p->parser.iterate(json, len, capacity).get(doc);
    if (e) {
        set_err(err, errlen, "malformed JSON: %s", simdjson_reason(e));
        goto fail;
    }
    e = write_document(w, doc, event != 0);
    if (!e) return 0;
    if (w.has_bad_time) {
        int n = w.bad_time_len > 64 ? 64 : (int)w.bad_time_len;
        set_err(err, errlen, "bad time: \"%.*s%s\" is not RFC 3339", n, w.bad_time,
                w.bad_time_len > 64 ? "..." : "");
    } else if (w.not_object) {
        set_err(err, errlen, "not an object");
    } else if (e == simdjson::MEMALLOC) {
        set_err(err, errlen, "out of memory");
    } else if (e == simdjson::DEPTH_ERROR) {
        set_err(err, errlen, "malformed JSON: nested deeper than %d levels", SL_JSON_MAX_DEPTH);
    } else {
        long at = error_offset(doc, json, len);
        const char *why = e == simdjson::TRAILING_CONTENT ? "trailing content after the value"
                                                          : simdjson_reason(e);
        if (at >= 0)
            set_err(err, errlen, "malformed JSON: %s at byte %ld", why, at);
        else
            set_err(err, errlen, "malformed JSON: %s", why);
    }
fail:
    out->len = old_len;
    return -1;
}

} // namespace

extern "C" {

sl_json_parser *sl_json_parser_new(void)
{
    try {
        sl_json_parser *p = new (std::nothrow) sl_json_parser;
        if (!p) return nullptr;
        if (p->parser.allocate(PARSER_INITIAL_CAPACITY, SL_JSON_MAX_DEPTH + 1) !=
            simdjson::SUCCESS) {
            delete p;
            return nullptr;
        }
        return p;
    } catch (...) {
        return nullptr;
    }
}

void sl_json_parser_destroy(sl_json_parser **pp)
{
    if (!pp || !*pp) return;
    delete *pp;
    *pp = nullptr;
}

int sl_json_to_msgpack(sl_json_parser *p, const char *json, size_t len, size_t capacity, int event,
                       sl_wbuf *out, char *err, size_t errlen)
{
    size_t old_len = out->len;
    if (capacity < len + SL_JSON_PADDING) {
        set_err(err, errlen, "internal error: JSON buffer lacks %d bytes of padding",
                SL_JSON_PADDING);
        return -1;
    }
    try {
        return convert(p, json, len, capacity, event, out, err, errlen);
    } catch (...) {
        out->len = old_len;
        set_err(err, errlen, "internal error in the JSON parser");
        return -1;
    }
}

} /* extern "C" */
