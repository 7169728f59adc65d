/*
 * scalar_pos.c - where byte k of a scalar's text sits in the file.
 *
 * An expression error points at a token by its byte offset in the scalar's
 * text; the file shows that text quoted, escaped, folded over lines or as a
 * block. We decode the scalar's source again, as libyaml did, and stop when
 * the output reaches byte k: the source character that produced it is the
 * position. Every decoded byte is compared with the stored text; if they
 * ever differ (${VAR} expansion, an explicit block indentation indicator,
 * anything we do not model) the answer is the scalar's first character, as
 * before, never a wrong spot.
 */
#include <string.h>

#include "config.h"

typedef struct decoder {
    const char *src; /* the scalar's source, from its first character */
    size_t len;
    const char *text; /* the stored (decoded) text */
    size_t text_len;
    size_t want; /* the byte of text whose source we look for */
    size_t out;  /* bytes decoded so far */
    long found;  /* source index of byte `want`, -1 while not found */
    int bad;     /* decoded bytes differ from the text */
} decoder;

/* One decoded byte, produced by the source at index at. Returns 1 to stop. */
static int emit(decoder *d, char c, size_t at)
{
    if (d->out >= d->text_len || d->text[d->out] != c) {
        d->bad = 1;
        return 1;
    }
    if (d->out == d->want) {
        d->found = (long)at;
        return 1;
    }
    d->out++;
    return 0;
}

static int emit_utf8(decoder *d, unsigned long cp, size_t at)
{
    char b[4];
    int n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    for (int i = 0; i < n; i++)
        if (emit(d, b[i], at))
            return 1;
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static int is_break(char c) { return c == '\n' || c == '\r'; }

/* Index past the line break at i (\n, \r or \r\n). */
static size_t skip_break(const decoder *d, size_t i)
{
    if (d->src[i] == '\r' && i + 1 < d->len && d->src[i + 1] == '\n')
        return i + 2;
    return i + 1;
}

static size_t skip_blanks(const decoder *d, size_t i)
{
    while (i < d->len && is_blank(d->src[i]))
        i++;
    return i;
}

/*
 * Line folding inside a flow scalar, at the break at i: one break becomes a
 * space, n+1 breaks become n newlines; blanks around the breaks go. Returns
 * the index after it, or 0 to stop.
 */
static size_t fold_flow(decoder *d, size_t i)
{
    size_t empty = 0;
    i = skip_blanks(d, skip_break(d, i));
    while (i < d->len && is_break(d->src[i])) {
        empty++;
        i = skip_blanks(d, skip_break(d, i));
    }
    if (empty == 0)
        return emit(d, ' ', i) ? 0 : i;
    for (size_t k = 0; k < empty; k++)
        if (emit(d, '\n', i))
            return 0;
    return i;
}

static int hex_value(const decoder *d, size_t i, int digits, unsigned long *cp)
{
    *cp = 0;
    if (i + (size_t)digits > d->len)
        return -1;
    for (int k = 0; k < digits; k++) {
        char c = d->src[i + (size_t)k];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -1;
        *cp = *cp << 4 | (unsigned long)v;
    }
    return 0;
}

/* A double-quoted escape at i (the backslash). Returns the index after it, or 0 to stop. */
static size_t escape(decoder *d, size_t i)
{
    static const char simple[] = "0\0a\ab\bt\tn\nv\vf\fr\re\x1b \040\"\"//\\\\\t\t";
    if (i + 1 >= d->len)
        return d->bad = 1, 0;
    char c = d->src[i + 1];
    if (is_break(c)) { /* escaped line break: joins the lines with nothing */
        size_t j = skip_blanks(d, skip_break(d, i + 1));
        while (j < d->len && is_break(d->src[j])) {
            if (emit(d, '\n', j))
                return 0;
            j = skip_blanks(d, skip_break(d, j));
        }
        return j;
    }
    for (size_t k = 0; k + 1 < sizeof simple; k += 2)
        if (simple[k] == c)
            return emit(d, simple[k + 1], i) ? 0 : i + 2;
    unsigned long cp;
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        if (hex_value(d, i + 2, digits, &cp) != 0)
            return d->bad = 1, 0;
        return emit_utf8(d, cp, i) ? 0 : i + 2 + (size_t)digits;
    }
    cp = c == 'N' ? 0x85 : c == '_' ? 0xA0 : c == 'L' ? 0x2028 : c == 'P' ? 0x2029 : 0;
    if (!cp)
        return d->bad = 1, 0;
    return emit_utf8(d, cp, i) ? 0 : i + 2;
}

/* Plain, single- and double-quoted scalars starting at i. */
static void decode_flow(decoder *d, size_t i)
{
    char quote = d->src[i] == '\'' || d->src[i] == '"' ? d->src[i] : 0;
    if (quote)
        i++;
    while (i < d->len) {
        char c = d->src[i];
        if (quote == '\'' && c == '\'') {
            if (i + 1 < d->len && d->src[i + 1] == '\'') {
                if (emit(d, '\'', i))
                    return;
                i += 2;
                continue;
            }
            return;
        }
        if (quote == '"' && c == '"')
            return;
        if (quote == '"' && c == '\\') {
            if (!(i = escape(d, i)))
                return;
            continue;
        }
        if (is_blank(c)) { /* blanks before a line break are dropped */
            size_t j = skip_blanks(d, i);
            if (j < d->len && is_break(d->src[j])) {
                i = j;
                continue;
            }
        }
        if (is_break(c)) {
            if (!(i = fold_flow(d, i)))
                return;
            continue;
        }
        if (emit(d, c, i))
            return;
        i++;
    }
}

/* Literal (|) and folded (>) block scalars; i is at the indicator. */
static void decode_block(decoder *d, size_t i)
{
    int folded = d->src[i] == '>';
    size_t indent = 0;
    for (i++; i < d->len && !is_break(d->src[i]) && d->src[i] != '#'; i++) {
        if (d->src[i] >= '1' && d->src[i] <= '9') {
            d->bad = 1; /* explicit indentation: relative to a parent we do not know */
            return;
        }
    }
    while (i < d->len && !is_break(d->src[i]))
        i++;
    if (i < d->len)
        i = skip_break(d, i);
    /* the first line that is not empty sets the indentation */
    for (size_t j = i; j < d->len;) {
        size_t k = j;
        while (k < d->len && d->src[k] == ' ')
            k++;
        if (k < d->len && !is_break(d->src[k])) {
            indent = k - j;
            break;
        }
        if (k >= d->len)
            break;
        j = skip_break(d, k);
    }
    size_t empty = 0;
    int first = 1, prev_more = 0;
    while (i < d->len) {
        size_t line = i, k = i;
        while (k < d->len && k - line < indent && d->src[k] == ' ')
            k++;
        size_t e = k;
        while (e < d->len && !is_break(d->src[e]))
            e++;
        if (k - line < indent || e == k) { /* an empty (or less indented: the end) line */
            if (e > k || e >= d->len)
                return;
            empty++;
            i = skip_break(d, e);
            continue;
        }
        int more = is_blank(d->src[k]);
        size_t breaks = empty;
        if (!first) {
            if (folded && !more && !prev_more)
                breaks = empty; /* a single break folds into a space */
            else
                breaks = empty + 1;
        }
        if (!first && breaks == 0) {
            if (emit(d, ' ', k))
                return;
        }
        for (size_t b = 0; b < breaks; b++)
            if (emit(d, '\n', k))
                return;
        for (size_t c = k; c < e; c++)
            if (emit(d, d->src[c], c))
                return;
        first = 0;
        prev_more = more;
        empty = 0;
        if (e >= d->len)
            return;
        i = skip_break(d, e);
    }
}

void sl_node_text_pos(const sl_node *n, size_t offset, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (!n->str)
        return;
    if (!n->src) { /* a plain scalar on one line: its text is its source */
        for (size_t i = 0; i < offset && n->str[i]; i++)
            if (((unsigned char)n->str[i] & 0xC0) != 0x80)
                ++*col;
        return;
    }
    decoder d = {.src = n->src,
                 .len = strlen(n->src),
                 .text = n->str,
                 .text_len = strlen(n->str),
                 .want = offset,
                 .found = -1};
    size_t i = 0;
    while (i < d.len && (d.src[i] == '!' || d.src[i] == '&')) { /* a tag or an anchor first */
        while (i < d.len && !is_blank(d.src[i]) && !is_break(d.src[i]))
            i++;
        while (i < d.len && (is_blank(d.src[i]) || is_break(d.src[i])))
            i++;
    }
    if (i < d.len && (d.src[i] == '|' || d.src[i] == '>'))
        decode_block(&d, i);
    else
        decode_flow(&d, i);
    if (d.bad || d.found < 0)
        return;
    for (long k = 0; k < d.found; k++) {
        unsigned char c = (unsigned char)d.src[k];
        if (c == '\n' || (c == '\r' && d.src[k + 1] != '\n')) {
            ++*line;
            *col = 1;
        } else if ((c & 0xC0) != 0x80) {
            ++*col;
        }
    }
}
