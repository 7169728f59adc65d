/*
 * expr_lex.c - tokens of the expression language, literals decoded.
 *
 * One token of lookahead (cc->tok), read on demand by the parser. Literal
 * text is decoded here: integers to their magnitude (the parser applies a
 * leading minus, so -9223372036854775808 is expressible), doubles through
 * strtod, strings and bytes with CEL's escapes into the compiler's arena.
 *
 * CEL rules kept: in a string literal \xHH and \ooo name Unicode code points
 * (encoded as UTF-8), in a bytes literal they name octets; raw strings
 * (r"...") take no escapes; only triple-quoted strings may span lines;
 * reserved words cannot be identifiers.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"

static const char *const reserved[] = {
    "as",  "break", "const",   "continue",  "else",   "for", "function", "if",    "import",
    "let", "loop",  "package", "namespace", "return", "var", "void",     "while", NULL,
};

static int is_ident_start(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Skip spaces and // comments. */
static void skip_space(sl__xcc *cc)
{
    while (cc->pos < cc->len) {
        char c = cc->text[cc->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            cc->pos++;
        } else if (c == '/' && cc->pos + 1 < cc->len && cc->text[cc->pos + 1] == '/') {
            while (cc->pos < cc->len && cc->text[cc->pos] != '\n')
                cc->pos++;
        } else {
            break;
        }
    }
}

static int lex_number(sl__xcc *cc, sl__xtok *t)
{
    const char *s = cc->text;
    size_t i = cc->pos, n = cc->len;
    int is_double = 0;
    if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        size_t start = i;
        uint64_t v = 0;
        int over = 0;
        while (i < n && hexval((unsigned char)s[i]) >= 0) {
            if (v >> 60) over = 1;
            v = v * 16 + (uint64_t)hexval((unsigned char)s[i]);
            i++;
        }
        if (i == start) return sl__xfail(cc, t->off, "invalid hex literal");
        t->u = v;
        t->kind = T_INT;
        if (i < n && (s[i] == 'u' || s[i] == 'U')) {
            t->kind = T_UINT;
            i++;
        }
        if (over) return sl__xfail(cc, t->off, "integer literal out of range");
    } else {
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i < n && s[i] == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1])) {
            is_double = 1;
            i++;
            while (i < n && isdigit((unsigned char)s[i]))
                i++;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            size_t j = i + 1;
            if (j < n && (s[j] == '+' || s[j] == '-')) j++;
            if (j >= n || !isdigit((unsigned char)s[j]))
                return sl__xfail(cc, t->off, "invalid exponent in number");
            while (j < n && isdigit((unsigned char)s[j]))
                j++;
            i = j;
            is_double = 1;
        }
        if (is_double) {
            char *copy = sl__xarena_strdup(cc->arena, s + cc->pos, i - cc->pos);
            if (!copy) return sl__xfail(cc, t->off, "out of memory");
            errno = 0;
            t->d = strtod(copy, NULL);
            if (errno == ERANGE && (t->d > 1 || t->d < -1))
                return sl__xfail(cc, t->off, "double literal out of range");
            t->kind = T_DOUBLE;
        } else {
            uint64_t v = 0;
            int over = 0;
            for (size_t k = cc->pos; k < i; k++) {
                unsigned dgt = (unsigned)(s[k] - '0');
                if (v > (UINT64_MAX - dgt) / 10) over = 1;
                v = v * 10 + dgt;
            }
            t->u = v;
            t->kind = T_INT;
            if (i < n && (s[i] == 'u' || s[i] == 'U')) {
                t->kind = T_UINT;
                i++;
            }
            if (over) return sl__xfail(cc, t->off, "integer literal out of range");
        }
    }
    if (i < n && (is_ident_char((unsigned char)s[i]) || s[i] == '.')) {
        if (s[i] != '.' || (t->kind == T_DOUBLE))
            return sl__xfail(cc, t->off, "invalid number '%.*s'", (int)(i + 1 - cc->pos),
                             s + cc->pos);
    }
    cc->pos = i;
    return 0;
}

/* Decode one escape at s[*i] (just after the backslash) into out; returns bytes written or -1. */
static int lex_escape(sl__xcc *cc, size_t *i, int bytes, char *out)
{
    const char *s = cc->text;
    size_t n = cc->len, at = *i - 1;
    if (*i >= n) return sl__xfail(cc, at, "unterminated string");
    char c = s[(*i)++];
    uint32_t cp;
    int digits;
    switch (c) {
    case 'a':
        out[0] = '\a';
        return 1;
    case 'b':
        out[0] = '\b';
        return 1;
    case 'f':
        out[0] = '\f';
        return 1;
    case 'n':
        out[0] = '\n';
        return 1;
    case 'r':
        out[0] = '\r';
        return 1;
    case 't':
        out[0] = '\t';
        return 1;
    case 'v':
        out[0] = '\v';
        return 1;
    case '\\':
    case '\'':
    case '"':
    case '`':
    case '?':
        out[0] = c;
        return 1;
    case 'x':
    case 'X':
        digits = 2;
        goto hex;
    case 'u':
        digits = 4;
        goto hex;
    case 'U':
        digits = 8;
        goto hex;
    default:
        if (c >= '0' && c <= '3') {
            if (*i + 2 > n || s[*i] < '0' || s[*i] > '7' || s[*i + 1] < '0' || s[*i + 1] > '7')
                return sl__xfail(cc, at, "octal escape needs three digits (\\000 to \\377)");
            cp = (uint32_t)(c - '0') * 64 + (uint32_t)(s[*i] - '0') * 8 +
                 (uint32_t)(s[*i + 1] - '0');
            *i += 2;
            goto put;
        }
        return sl__xfail(cc, at, "invalid escape '\\%c'", isprint((unsigned char)c) ? c : '?');
    }
hex:
    cp = 0;
    for (int k = 0; k < digits; k++) {
        int h = *i < n ? hexval((unsigned char)s[*i]) : -1;
        if (h < 0) return sl__xfail(cc, at, "escape '\\%c' needs %d hex digits", c, digits);
        cp = cp * 16 + (uint32_t)h;
        (*i)++;
    }
    if (c == 'u' || c == 'U') {
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return sl__xfail(cc, at, "invalid code point in escape");
        return sl__xutf8_put(cp, out);
    }
put:
    if (bytes) {
        out[0] = (char)(uint8_t)cp;
        return 1;
    }
    return sl__xutf8_put(cp, out);
}

static int lex_string(sl__xcc *cc, sl__xtok *t, int raw, int bytes)
{
    const char *s = cc->text;
    size_t n = cc->len, i = cc->pos;
    char q = s[i];
    int triple = i + 2 < n && s[i + 1] == q && s[i + 2] == q;
    i += triple ? 3 : 1;
    char *buf = sl__xarena_alloc(cc->arena, n - i + 1);
    if (!buf) return sl__xfail(cc, t->off, "out of memory");
    size_t o = 0;
    for (;;) {
        if (i >= n)
            return sl__xfail(cc, t->off, "unterminated %s literal", bytes ? "bytes" : "string");
        char c = s[i];
        if (c == q && (!triple || (i + 2 < n && s[i + 1] == q && s[i + 2] == q))) {
            i += triple ? 3 : 1;
            break;
        }
        if (!triple && (c == '\n' || c == '\r'))
            return sl__xfail(cc, t->off,
                             "newline in string literal (use \\n or a triple-quoted string)");
        if (c == '\\' && !raw) {
            i++;
            int w = lex_escape(cc, &i, bytes, buf + o);
            if (w < 0) return -1;
            o += (size_t)w;
            continue;
        }
        buf[o++] = c;
        i++;
    }
    buf[o] = '\0';
    t->kind = bytes ? T_BYTES : T_STRING;
    t->s = buf;
    t->slen = o;
    cc->pos = i;
    return 0;
}

/* A string prefix (r, b, rb, br in any case) directly followed by a quote: its length, else 0. */
static size_t string_prefix(const sl__xcc *cc, int *raw, int *bytes)
{
    const char *s = cc->text + cc->pos;
    size_t left = cc->len - cc->pos;
    *raw = *bytes = 0;
    for (size_t k = 0; k < 2 && k < left; k++) {
        char c = (char)tolower((unsigned char)s[k]);
        if (c == 'r' && !*raw)
            *raw = 1;
        else if (c == 'b' && !*bytes)
            *bytes = 1;
        else if ((c == '"' || c == '\'') && k > 0)
            return k;
        else
            return 0;
        if (k + 1 < left && (s[k + 1] == '"' || s[k + 1] == '\'')) return k + 1;
    }
    return 0;
}

int sl__xlex(sl__xcc *cc)
{
    sl__xtok *t = &cc->tok;
    memset(t, 0, sizeof *t);
    skip_space(cc);
    t->off = cc->pos;
    if (cc->pos >= cc->len) {
        t->kind = T_EOF;
        return 0;
    }
    const char *s = cc->text;
    size_t i = cc->pos;
    unsigned char c = (unsigned char)s[i];
    char c1 = i + 1 < cc->len ? s[i + 1] : '\0';
    int rc = 0;

    if (isdigit(c) || (c == '.' && isdigit((unsigned char)c1))) {
        rc = lex_number(cc, t);
    } else if (c == '"' || c == '\'') {
        rc = lex_string(cc, t, 0, 0);
    } else if (is_ident_start(c)) {
        int raw, bytes;
        size_t plen = string_prefix(cc, &raw, &bytes);
        if (plen) {
            cc->pos += plen;
            rc = lex_string(cc, t, raw, bytes);
        } else {
            size_t j = i;
            while (j < cc->len && is_ident_char((unsigned char)s[j]))
                j++;
            t->s = s + i;
            t->slen = j - i;
            t->kind = T_IDENT;
            cc->pos = j;
            if (t->slen == 4 && memcmp(t->s, "null", 4) == 0)
                t->kind = T_NULL;
            else if (t->slen == 4 && memcmp(t->s, "true", 4) == 0)
                t->kind = T_TRUE;
            else if (t->slen == 5 && memcmp(t->s, "false", 5) == 0)
                t->kind = T_FALSE;
            else if (t->slen == 2 && memcmp(t->s, "in", 2) == 0)
                t->kind = T_IN;
            for (size_t k = 0; t->kind == T_IDENT && reserved[k]; k++)
                if (strlen(reserved[k]) == t->slen && memcmp(reserved[k], t->s, t->slen) == 0)
                    return sl__xfail(cc, t->off, "'%s' is a reserved word", reserved[k]);
        }
    } else {
        sl__xtokkind k2 = T_EOF, k1 = T_EOF;
        switch (c) {
        case '=':
            if (c1 == '=') k2 = T_EQ;
            break;
        case '!':
            if (c1 == '=')
                k2 = T_NE;
            else
                k1 = T_NOT;
            break;
        case '<':
            if (c1 == '=')
                k2 = T_LE;
            else
                k1 = T_LT;
            break;
        case '>':
            if (c1 == '=')
                k2 = T_GE;
            else
                k1 = T_GT;
            break;
        case '&':
            if (c1 == '&') k2 = T_AND;
            break;
        case '|':
            if (c1 == '|') k2 = T_OR;
            break;
        case '(':
            k1 = T_LPAREN;
            break;
        case ')':
            k1 = T_RPAREN;
            break;
        case '[':
            k1 = T_LBRACKET;
            break;
        case ']':
            k1 = T_RBRACKET;
            break;
        case '{':
            k1 = T_LBRACE;
            break;
        case '}':
            k1 = T_RBRACE;
            break;
        case '.':
            k1 = T_DOT;
            break;
        case ',':
            k1 = T_COMMA;
            break;
        case ':':
            k1 = T_COLON;
            break;
        case '?':
            k1 = T_QUESTION;
            break;
        case '+':
            k1 = T_PLUS;
            break;
        case '-':
            k1 = T_MINUS;
            break;
        case '*':
            k1 = T_STAR;
            break;
        case '/':
            k1 = T_SLASH;
            break;
        case '%':
            k1 = T_PERCENT;
            break;
        default:
            break;
        }
        if (k2 != T_EOF) {
            t->kind = k2;
            cc->pos += 2;
        } else if (k1 != T_EOF) {
            t->kind = k1;
            cc->pos += 1;
        } else if (c == '=' || c == '&' || c == '|') {
            return sl__xfail(cc, t->off, "unexpected '%c' (did you mean '%c%c'?)", c, c, c);
        } else if (isprint(c)) {
            return sl__xfail(cc, t->off, "unexpected character '%c'", c);
        } else {
            return sl__xfail(cc, t->off, "unexpected byte 0x%02x", c);
        }
    }
    if (rc != 0) return -1;
    t->len = cc->pos - t->off;
    return 0;
}
