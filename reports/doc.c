/* reports/doc.c - the HTML and Markdown report writer. */
#include "reports/doc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/status.h"

#define DOC_MAX_SVG_BYTES (16u << 20)

/* The page's style sheet: readable tables, boxes for warnings, plots scaled to the page. */
static const char doc_css[] =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d1d1f;background:#fafafa;margin:0}\n"
    "main{max-width:1280px;margin:0 auto;padding:1.2em 2em 3em;background:#fff}\n"
    "h1{font-size:1.7em;margin:.4em 0 .2em}h2{margin-top:2em;border-bottom:2px solid #e3e3e3;"
    "padding-bottom:.2em}h3{margin-top:1.5em}\n"
    "code{font:0.92em/1.3 'DejaVu Sans Mono',Menlo,Consolas,monospace;background:#f2f2f4;"
    "padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}\n"
    ".box{padding:.6em 1em;border-radius:6px;margin:1em 0}\n"
    ".warn{background:#fff1e6;border:2px solid #e8590c;font-weight:500}\n"
    ".note{background:#eef4fb;border:1px solid #a9c7ea}\n"
    ".tw{overflow-x:auto;margin:.8em 0}\n"
    "table{border-collapse:collapse;font-size:.92em}\n"
    "th,td{border:1px solid #ddd;padding:.25em .55em;vertical-align:top;text-align:left}\n"
    "thead th{background:#f3f3f6;position:sticky;top:0}\n"
    "tbody th{font-weight:600;background:#fcfcfd}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "td.bad{background:#ffd8d8;color:#8a0000;font-weight:700}\n"
    "td.good{background:#e3f6e3}\n"
    "tr.group>*{border-top:2px solid #999}\n"
    "figure{margin:1.2em 0}figcaption{color:#555;font-size:.9em;margin-top:.3em}\n"
    "svg.plot{max-width:100%;height:auto;border:1px solid #eee}\n"
    "nav ul{columns:2;margin:.3em 0}\n"
    "footer{color:#777;font-size:.85em;margin-top:3em}\n";

static void doc_fail(struct rpt_doc *d, int rc)
{
    if (d->rc == MQ_OK)
        d->rc = rc;
}

/* ---- escaping ----------------------------------------------------------------------------- */

void rpt_html_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (c >= 0x20 || c == '\n' || c == '\t')
                fputc(c, f);
            break;
        }
    }
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void rpt_md_escape(FILE *f, const char *s)
{
    for (const char *p = s; p && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n' || c == '\r' || c == '\t')
            fputc(' ', f);
        else if (c < 0x20)
            continue;
        else if (c == '_' && p > s && is_alnum(p[-1]) && is_alnum(p[1]))
            fputc(c, f); /* inside a word: never emphasis (q4_0, attn_q) */
        else if (c == '>' && p > s)
            fputc(c, f); /* markup only where a line starts */
        else if (strchr("\\`*_[]<>|#!~&", c))
            fprintf(f, "\\%c", c);
        else
            fputc(c, f);
    }
}

void rpt_md_code(FILE *f, const char *s)
{
    if (!s)
        s = "";
    int longest = 0, run = 0;
    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    size_t len = strlen(s);
    bool pad = len && (s[0] == '`' || s[len - 1] == '`' || s[0] == ' ');
    for (int i = 0; i <= longest; i++)
        fputc('`', f);
    if (pad)
        fputc(' ', f);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '|')
            fputs("\\|", f);
        else if (c == '\n' || c == '\r' || c == '\t')
            fputc(' ', f);
        else if (c >= 0x20)
            fputc(c, f);
    }
    if (pad)
        fputc(' ', f);
    for (int i = 0; i <= longest; i++)
        fputc('`', f);
}

/* ---- inline SVG ------------------------------------------------------------------------- */

static bool starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

int rpt_svg_inline(FILE *f, const char *svg, size_t n, const char *prefix, const char *label)
{
    const char *end = svg + n, *p = svg;
    /* the root element: skip the prolog, doctype and comments before it */
    while (p < end && !(starts(p, end, "<svg") && p + 4 < end && strchr(" \t\r\n>", p[4])))
        p++;
    if (p >= end)
        return mq_error(MQ_EFORMAT, "not an SVG document (no <svg> element)");
    fputs("<svg class=\"plot\" role=\"img\" aria-label=\"", f);
    rpt_html_escape(f, label);
    fputc('"', f);
    p += 4;
    /* outside tags: copied as is; inside a tag: ids and references to ids get the prefix */
    bool in_tag = true;
    char quote = 0;
    while (p < end) {
        char c = *p;
        if (!in_tag) {
            if (c == '<')
                in_tag = true;
            fputc(c, f);
            p++;
            continue;
        }
        if (quote) {
            if (c == quote)
                quote = 0;
            if (starts(p, end, "url(#")) {
                fprintf(f, "url(#%s-", prefix);
                p += 5;
                continue;
            }
            fputc(c, f);
            p++;
            continue;
        }
        if (c == '>') {
            in_tag = false;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if ((c == ' ' || c == '\t' || c == '\n' || c == '\r') && p + 1 < end) {
            /* an attribute starts: id="x" becomes id="P-x", href="#x" href="#P-x" */
            const char *a = p + 1;
            const char *names[] = {"id=", "xlink:href=", "href="};
            for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                size_t k = strlen(names[i]);
                if (!starts(a, end, names[i]) || a + k >= end || (a[k] != '"' && a[k] != '\''))
                    continue;
                bool ref = names[i][0] != 'i';
                if (ref && !(a + k + 1 < end && a[k + 1] == '#'))
                    break;
                fputc(c, f);
                fwrite(a, 1, k + 1 + ref, f);
                fprintf(f, "%s-", prefix);
                quote = a[k];
                p = a + k + 1 + ref;
                goto next;
            }
        }
        fputc(c, f);
        p++;
    next:;
    }
    fputc('\n', f);
    return MQ_OK;
}

/* ---- the document ----------------------------------------------------------------------- */

int rpt_doc_open(struct rpt_doc *d, const char *dir, const char *title)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    d->html = open_memstream(&d->html_buf, &d->html_len);
    d->md = open_memstream(&d->md_buf, &d->md_len);
    if (!d->html || !d->md) {
        rpt_doc_release(d);
        return mq_error(MQ_ENOMEM, "cannot start a report in '%s'", dir);
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          d->html);
    rpt_html_escape(d->html, title);
    fprintf(d->html, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", doc_css);
    rpt_html_escape(d->html, title);
    fputs("</h1>\n", d->html);
    fputs("# ", d->md);
    rpt_md_escape(d->md, title);
    fputs("\n\n", d->md);
    return MQ_OK;
}

void rpt_doc_release(struct rpt_doc *d)
{
    if (d->html)
        fclose(d->html);
    if (d->md)
        fclose(d->md);
    free(d->html_buf);
    free(d->md_buf);
    d->html = d->md = NULL;
    d->html_buf = d->md_buf = NULL;
}

/* Writes n bytes to path through a temporary file beside it, renamed into place. */
static int doc_write_file(const char *path, const char *data, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return mq_error(MQ_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int e = done == n ? 0 : errno ? errno : EIO;
    if (!e && fchmod(fd, 0644) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    return MQ_OK;
}

int rpt_doc_close(struct rpt_doc *d, const char *stem)
{
    fputs("</main>\n</body>\n</html>\n", d->html);
    int rc = d->rc;
    if ((fflush(d->html) != 0 || fflush(d->md) != 0) && rc == MQ_OK)
        rc = mq_error(MQ_ENOMEM, "out of memory writing the report in '%s'", d->dir);
    char path[4200];
    if (rc == MQ_OK) {
        snprintf(path, sizeof(path), "%s/%s.html", d->dir, stem);
        rc = doc_write_file(path, d->html_buf, d->html_len);
    }
    if (rc == MQ_OK) {
        snprintf(path, sizeof(path), "%s/%s.md", d->dir, stem);
        rc = doc_write_file(path, d->md_buf, d->md_len);
    }
    rpt_doc_release(d);
    return rc;
}

void rpt_doc_heading(struct rpt_doc *d, int level, const char *id, const char *text)
{
    level = level < 2 ? 2 : level > 4 ? 4 : level;
    fprintf(d->html, "<h%d", level);
    if (id) {
        fputs(" id=\"", d->html);
        rpt_html_escape(d->html, id);
        fputc('"', d->html);
        fputs("<a id=\"", d->md);
        rpt_html_escape(d->md, id);
        fputs("\"></a>\n\n", d->md);
    }
    fputc('>', d->html);
    rpt_html_escape(d->html, text);
    fprintf(d->html, "</h%d>\n", level);
    for (int i = 0; i < level; i++)
        fputc('#', d->md);
    fputc(' ', d->md);
    rpt_md_escape(d->md, text);
    fputs("\n\n", d->md);
}

void rpt_doc_par_begin(struct rpt_doc *d, enum rpt_doc_kind kind)
{
    static const char *const cls[RPT_DOC_KIND_COUNT] = {[RPT_DOC_PLAIN] = "",
                                                        [RPT_DOC_WARN] = " class=\"box warn\"",
                                                        [RPT_DOC_NOTE] = " class=\"box note\""};
    fprintf(d->html, "<p%s>", cls[kind]);
    if (kind != RPT_DOC_PLAIN)
        fputs("> ", d->md);
}

void rpt_doc_par_end(struct rpt_doc *d)
{
    fputs("</p>\n", d->html);
    fputs("\n\n", d->md);
}

void rpt_doc_list_begin(struct rpt_doc *d)
{
    fputs("<ul>\n", d->html);
}
void rpt_doc_item_begin(struct rpt_doc *d)
{
    fputs("<li>", d->html);
    fputs("- ", d->md);
}
void rpt_doc_item_end(struct rpt_doc *d)
{
    fputs("</li>\n", d->html);
    fputc('\n', d->md);
}
void rpt_doc_list_end(struct rpt_doc *d)
{
    fputs("</ul>\n", d->html);
    fputc('\n', d->md);
}

static void doc_vtext(struct rpt_doc *d, const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    rpt_html_escape(d->html, buf);
    rpt_md_escape(d->md, buf);
}

void rpt_doc_text(struct rpt_doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    doc_vtext(d, fmt, ap);
    va_end(ap);
}

void rpt_doc_strong(struct rpt_doc *d, const char *fmt, ...)
{
    fputs("<strong>", d->html);
    fputs("**", d->md);
    va_list ap;
    va_start(ap, fmt);
    doc_vtext(d, fmt, ap);
    va_end(ap);
    fputs("</strong>", d->html);
    fputs("**", d->md);
}

void rpt_doc_code(struct rpt_doc *d, const char *s)
{
    fputs("<code>", d->html);
    rpt_html_escape(d->html, s);
    fputs("</code>", d->html);
    rpt_md_code(d->md, s);
}

void rpt_doc_anchor_link(struct rpt_doc *d, const char *id, const char *text)
{
    fputs("<a href=\"#", d->html);
    rpt_html_escape(d->html, id);
    fputs("\">", d->html);
    rpt_html_escape(d->html, text);
    fputs("</a>", d->html);
    fputc('[', d->md);
    rpt_md_escape(d->md, text);
    fputs("](#", d->md);
    rpt_md_escape(d->md, id);
    fputc(')', d->md);
}

void rpt_doc_table_begin(struct rpt_doc *d, int cols, const char *const *headers)
{
    d->cols = cols;
    d->col = 0;
    fputs("<div class=\"tw\"><table>\n<thead><tr>", d->html);
    fputs("|", d->md);
    for (int i = 0; i < cols; i++) {
        fputs("<th>", d->html);
        rpt_html_escape(d->html, headers[i]);
        fputs("</th>", d->html);
        fputc(' ', d->md);
        rpt_md_escape(d->md, headers[i]);
        fputs(" |", d->md);
    }
    fputs("</tr></thead>\n<tbody>\n", d->html);
    fputs("\n|", d->md);
    for (int i = 0; i < cols; i++)
        fputs("---|", d->md);
    fputc('\n', d->md);
}

void rpt_doc_row_begin(struct rpt_doc *d, bool group)
{
    d->col = 0;
    fputs(group ? "<tr class=\"group\">" : "<tr>", d->html);
    fputc('|', d->md);
}

void rpt_doc_cell_begin(struct rpt_doc *d, unsigned flags)
{
    const char *tag = flags & RPT_CELL_HEAD ? "th" : "td";
    char cls[40] = "";
    snprintf(cls, sizeof(cls), "%s%s%s", flags & RPT_CELL_NUM ? " num" : "",
             flags & RPT_CELL_BAD ? " bad" : "", flags & RPT_CELL_GOOD ? " good" : "");
    if (cls[0])
        fprintf(d->html, "<%s class=\"%s\"%s>", tag, cls + 1,
                flags & RPT_CELL_HEAD ? " scope=\"row\"" : "");
    else
        fprintf(d->html, "<%s%s>", tag, flags & RPT_CELL_HEAD ? " scope=\"row\"" : "");
    fputc(' ', d->md);
    if (flags & RPT_CELL_BAD)
        fputs("**", d->md);
    d->col++;
    d->cell_flags = flags;
}

void rpt_doc_cell_end(struct rpt_doc *d)
{
    fputs(d->cell_flags & RPT_CELL_HEAD ? "</th>" : "</td>", d->html);
    fputs(d->cell_flags & RPT_CELL_BAD ? "** |" : " |", d->md);
    d->cell_flags = 0;
}

void rpt_doc_cell(struct rpt_doc *d, unsigned flags, const char *fmt, ...)
{
    rpt_doc_cell_begin(d, flags);
    va_list ap;
    va_start(ap, fmt);
    doc_vtext(d, fmt, ap);
    va_end(ap);
    rpt_doc_cell_end(d);
}

void rpt_doc_row_end(struct rpt_doc *d)
{
    while (d->col < d->cols) {
        rpt_doc_cell_begin(d, 0);
        rpt_doc_cell_end(d);
    }
    fputs("</tr>\n", d->html);
    fputc('\n', d->md);
}

void rpt_doc_table_end(struct rpt_doc *d)
{
    fputs("</tbody></table></div>\n", d->html);
    fputc('\n', d->md);
    d->cols = d->col = 0;
}

/* Reads a whole (bounded) file into a NUL-terminated buffer the caller frees. */
static int doc_read_file(const char *path, char **out, size_t *n)
{
    return mq_file_read(path, NULL, DOC_MAX_SVG_BYTES, out, n);
}

void rpt_doc_svg(struct rpt_doc *d, const char *rel_path, const char *caption)
{
    char path[8300], prefix[16];
    snprintf(path, sizeof(path), "%s/%s", d->dir, rel_path);
    snprintf(prefix, sizeof(prefix), "s%d", ++d->n_svg);
    char *svg = NULL;
    size_t n = 0;
    int rc = doc_read_file(path, &svg, &n);
    fputs("<figure>\n", d->html);
    if (rc == MQ_OK && (rc = rpt_svg_inline(d->html, svg, n, prefix, caption)) < 0)
        mq_error(rc, "cannot embed '%s'", path);
    free(svg);
    if (rc < 0) {
        doc_fail(d, rc);
        return;
    }
    fputs("<figcaption>", d->html);
    rpt_html_escape(d->html, caption);
    fputs("</figcaption>\n</figure>\n", d->html);
    /* Markdown: the file by relative path, characters outside a safe set percent-encoded */
    fputs("![", d->md);
    rpt_md_escape(d->md, caption);
    fputs("](", d->md);
    for (const char *p = rel_path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("._/-", c))
            fputc(c, d->md);
        else
            fprintf(d->md, "%%%02X", c);
    }
    fputs(")\n\n", d->md);
}
