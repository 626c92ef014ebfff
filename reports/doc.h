/* reports/doc.h - one report written twice at once: as a self-contained HTML page (plots
 * embedded inline as SVG, a style sheet in the page, no script, no external asset) and as
 * Markdown beside it (plots linked as files). Callers describe the document once with
 * headings, paragraphs, lists, tables and plots; every piece of text they pass is escaped
 * for each output, so names read from files (model paths, layer names) cannot inject
 * markup.
 *
 *     struct rpt_doc d;
 *     if (rpt_doc_open(&d, "out", "Hardware comparison: tinyllm") < 0) return -1;
 *     rpt_doc_heading(&d, 2, "targets", "Targets");
 *     rpt_doc_par_begin(&d, RPT_DOC_PLAIN);
 *     rpt_doc_text(&d, "model ");
 *     rpt_doc_code(&d, path);                        // an identifier, in code style
 *     rpt_doc_par_end(&d);
 *     const char *head[] = {"format", "time (us)"};
 *     rpt_doc_table_begin(&d, 2, head);
 *     rpt_doc_row_begin(&d, false);
 *     rpt_doc_cell(&d, RPT_CELL_HEAD, "q4_0");
 *     rpt_doc_cell(&d, RPT_CELL_NUM | RPT_CELL_BAD, "%.1f", 12.5);
 *     rpt_doc_row_end(&d);
 *     rpt_doc_table_end(&d);
 *     rpt_doc_svg(&d, "plots/speedup.svg", "Speed-up over f16");   // relative to "out"
 *     return rpt_doc_close(&d, "report");           // out/report.html, out/report.md
 *
 * Text calls (rpt_doc_text, _code, _strong) go inside a paragraph, a list item or a table
 * cell. Errors are sticky: the first failure (memory, a plot that cannot be read) is
 * printed once and rpt_doc_close returns it without writing anything. Both files are
 * written atomically (temporary file and rename).
 *
 * HTML: ids in each embedded SVG are prefixed ("s3-gpPt0") so that plots do not share
 * them; the XML prolog and doctype are dropped. Markdown: CommonMark with GitHub tables;
 * highlighted cells (RPT_CELL_BAD) are bold, as Markdown has no colours.
 *
 * Ownership: the doc owns its buffers until rpt_doc_close or rpt_doc_release; strings
 * passed in are borrowed for the call.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/; this file depends on core/ only.
 */
#ifndef MQ_REPORTS_DOC_H
#define MQ_REPORTS_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum rpt_doc_kind {
    RPT_DOC_PLAIN, /* a paragraph */
    RPT_DOC_WARN,  /* a box that stands out: emulated targets, missing tools */
    RPT_DOC_NOTE,  /* a quieter box: how to read a table */
    RPT_DOC_KIND_COUNT
};

/* table cell flags */
#define RPT_CELL_NUM 1u  /* a number: right-aligned */
#define RPT_CELL_HEAD 2u /* a row header (th) */
#define RPT_CELL_BAD 4u  /* highlighted as a problem (red; bold in Markdown) */
#define RPT_CELL_GOOD 8u /* highlighted as a gain (green) */

struct rpt_doc {
    FILE *html, *md; /* in-memory streams */
    char *html_buf, *md_buf;
    size_t html_len, md_len;
    char dir[4096];
    int n_svg;           /* SVGs embedded so far (their id prefix) */
    int cols, col;       /* the table being written: columns, cells so far in this row */
    unsigned cell_flags; /* the open cell's RPT_CELL_* flags */
    int rc;              /* the first error (sticky) */
};

int rpt_doc_open(struct rpt_doc *d, const char *dir, const char *title);
/* Ends both documents and writes dir/STEM.html and dir/STEM.md; releases the doc. */
int rpt_doc_close(struct rpt_doc *d, const char *stem);
/* Drops everything (on an error path); safe after close and on a zeroed doc. */
void rpt_doc_release(struct rpt_doc *d);

void rpt_doc_heading(struct rpt_doc *d, int level, const char *id, const char *text);
void rpt_doc_par_begin(struct rpt_doc *d, enum rpt_doc_kind kind);
void rpt_doc_par_end(struct rpt_doc *d);
void rpt_doc_list_begin(struct rpt_doc *d);
void rpt_doc_item_begin(struct rpt_doc *d);
void rpt_doc_item_end(struct rpt_doc *d);
void rpt_doc_list_end(struct rpt_doc *d);

/* Inline text, escaped. */
void rpt_doc_text(struct rpt_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rpt_doc_strong(struct rpt_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rpt_doc_code(struct rpt_doc *d, const char *s);
/* A link to an anchor of this document ("#targets"). */
void rpt_doc_anchor_link(struct rpt_doc *d, const char *id, const char *text);

void rpt_doc_table_begin(struct rpt_doc *d, int cols, const char *const *headers);
/* group: the row starts a group (a rule above it in HTML). */
void rpt_doc_row_begin(struct rpt_doc *d, bool group);
void rpt_doc_cell_begin(struct rpt_doc *d, unsigned flags);
void rpt_doc_cell_end(struct rpt_doc *d);
void rpt_doc_cell(struct rpt_doc *d, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the row, filling cells the caller left out. */
void rpt_doc_row_end(struct rpt_doc *d);
void rpt_doc_table_end(struct rpt_doc *d);

/* A plot: dir/rel_path (an SVG file) inline in the HTML, linked in the Markdown; caption
 * under it in both. An unreadable file or one that is not SVG is an error (sticky). */
void rpt_doc_svg(struct rpt_doc *d, const char *rel_path, const char *caption);

/* The escapers the doc uses, for tests and for other writers. HTML: & < > " ' as
 * entities, control characters other than tab and newline dropped (text and attribute
 * values alike). Markdown: the punctuation that CommonMark and GitHub tables treat as
 * markup (\ ` * _ [ ] < > | # ! ~ &) backslash-escaped (not _ inside a word, nor > after
 * the first character, where CommonMark reads them as text), newlines as spaces. Code spans:
 * fenced with one more backtick than the longest run inside, | escaped for tables. */
void rpt_html_escape(FILE *f, const char *s);
void rpt_md_escape(FILE *f, const char *s);
void rpt_md_code(FILE *f, const char *s);

/* Writes the SVG document svg (length n) into f as inline SVG for HTML: prolog and doctype
 * dropped, every id and reference to one (href="#..", url(#..)) prefixed with prefix,
 * role="img" and aria-label (escaped) added to the root. MQ_EFORMAT when there is no <svg
 * element. */
int rpt_svg_inline(FILE *f, const char *svg, size_t n, const char *prefix, const char *label);

#endif
