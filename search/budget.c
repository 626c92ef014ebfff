/* search/budget.c - strict parsing and printing of budgets; the contract is in budget.h. */
#include "search/budget.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/status.h"

struct unit {
    const char *name;
    double scale; /* bytes or ns per unit */
};

static const struct unit mem_units[] = {
    {"B", 1.0},      {"KB", 1e3},        {"MB", 1e6},           {"GB", 1e9},
    {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
};
static const struct unit time_units[] = {
    {"us", 1e3},
    {"ms", 1e6},
    {"s", 1e9},
};

struct budget_kind {
    const char *what; /* "memory budget" */
    const struct unit *units;
    int n_units;
    const char *unit_list; /* for messages */
    const char *example;
    const char *range; /* for messages */
    double lo, hi;
};

static const struct budget_kind mem_kind = {
    .what = "memory budget",
    .units = mem_units,
    .n_units = (int)(sizeof(mem_units) / sizeof(mem_units[0])),
    .unit_list =
        "units are case-sensitive: B, KB, MB, GB are powers of 1000, KiB, MiB, GiB of 1024",
    .example = "8GB",
    .range = "1 B to 1 PiB",
    .lo = SRCH_BUDGET_MIN_BYTES,
    .hi = SRCH_BUDGET_MAX_BYTES,
};

static const struct budget_kind time_kind = {
    .what = "latency budget",
    .units = time_units,
    .n_units = (int)(sizeof(time_units) / sizeof(time_units[0])),
    .unit_list = "units are case-sensitive: us, ms, s",
    .example = "200ms",
    .range = "1 ns to 1 day",
    .lo = SRCH_BUDGET_MIN_NS,
    .hi = SRCH_BUDGET_MAX_NS,
};

/* Length of the number at the start of s per the grammar in budget.h, 0 when there is
 * none. An 'e' not followed by digits is left for the unit. */
static size_t number_span(const char *s)
{
    size_t i = 0, digits = 0;
    while (isdigit((unsigned char)s[i]))
        i++, digits++;
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i]))
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (isdigit((unsigned char)s[j])) {
            while (isdigit((unsigned char)s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

/* A hint for a unit that is nearly right: the same letters in another case, a bare prefix
 * letter, or the micro sign. Empty when there is none. */
static void unit_hint(const struct budget_kind *k, const char *unit, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int u = 0; u < k->n_units; u++) {
        if (!strcasecmp(unit, k->units[u].name)) {
            snprintf(buf, size, "; did you mean '%s'?", k->units[u].name);
            return;
        }
    }
    if (k == &mem_kind && strlen(unit) == 1 && strchr("kKmMgG", unit[0])) {
        char up = (char)toupper((unsigned char)unit[0]);
        snprintf(buf, size, "; did you mean '%cB' or '%ciB'?", up, up);
    } else if (k == &time_kind &&
               (!strcmp(unit, "\xc2\xb5s") || !strcmp(unit, "\xce\xbcs"))) { /* µs, μs */
        snprintf(buf, size, "; write 'us' for microseconds");
    }
}

static int parse_budget(const struct budget_kind *k, const char *text, double *out)
{
    if (!text)
        return mq_error(MQ_EINVAL, "no %s given (%s)", k->what, k->unit_list);
    if (!text[0])
        return mq_error(MQ_EINVAL, "%s '': empty; write a number and a unit, e.g. '%s' (%s)",
                        k->what, k->example, k->unit_list);
    for (const char *c = text; *c; c++) {
        if (isspace((unsigned char)*c))
            return mq_error(MQ_EINVAL,
                            "%s '%s': spaces are not allowed; write the number and the unit "
                            "together, e.g. '%s' (%s)",
                            k->what, text, k->example, k->unit_list);
    }
    size_t n = number_span(text);
    if (n == 0)
        return mq_error(MQ_EINVAL,
                        "%s '%s': not a positive number followed by a unit, e.g. '%s' (%s)",
                        k->what, text, k->example, k->unit_list);
    const char *unit = text + n;
    if (!unit[0])
        return mq_error(MQ_EINVAL, "%s '%s': no unit (%s)", k->what, text, k->unit_list);
    const struct unit *found = NULL;
    for (int u = 0; u < k->n_units && !found; u++)
        if (!strcmp(unit, k->units[u].name))
            found = &k->units[u];
    if (!found) {
        char hint[64];
        unit_hint(k, unit, hint, sizeof(hint));
        return mq_error(MQ_EINVAL, "%s '%s': unknown unit '%s' (%s%s)", k->what, text, unit,
                        k->unit_list, hint);
    }
    /* The span is a plain decimal number, so strtod reads exactly it (in the C locale). */
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text + n)
        return mq_error(MQ_EINVAL,
                        "%s '%s': cannot read the number (is the locale's decimal point '.'?)",
                        k->what, text);
    double value = v * found->scale;
    if (!isfinite(value) || value < k->lo || value > k->hi)
        return mq_error(MQ_EINVAL, "%s '%s' is out of range: budgets run from %s (%s)", k->what,
                        text, k->range, k->unit_list);
    *out = value;
    return MQ_OK;
}

int srch_budget_parse_bytes(const char *text, double *bytes)
{
    return parse_budget(&mem_kind, text, bytes);
}

int srch_budget_parse_time(const char *text, double *ns)
{
    return parse_budget(&time_kind, text, ns);
}

int srch_budget_parse_kl(const char *text, double *kl)
{
    static const char what[] = "KL bound";
    static const char want[] = "a mean KL divergence in nats, >= 0, with no unit, e.g. '0.01'";
    if (!text)
        return mq_error(MQ_EINVAL, "no %s given (%s)", what, want);
    if (!text[0])
        return mq_error(MQ_EINVAL, "%s '': empty; write %s", what, want);
    size_t n = number_span(text);
    if (n == 0)
        return mq_error(MQ_EINVAL, "%s '%s': not a number >= 0; write %s", what, text, want);
    if (text[n])
        return mq_error(MQ_EINVAL, "%s '%s': '%s' after the number; write %s", what, text, text + n,
                        want);
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text + n)
        return mq_error(MQ_EINVAL,
                        "%s '%s': cannot read the number (is the locale's decimal point '.'?)",
                        what, text);
    if (!isfinite(v) || v > SRCH_BUDGET_MAX_KL)
        return mq_error(MQ_EINVAL, "%s '%s' is out of range: 0 to %g nats", what, text,
                        SRCH_BUDGET_MAX_KL);
    *kl = v;
    return MQ_OK;
}

void srch_budget_format_bytes(double bytes, bool binary, char *buf, size_t size)
{
    static const char *const dec[] = {"B", "KB", "MB", "GB", "TB"};
    static const char *const bin[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (!isfinite(bytes)) {
        snprintf(buf, size, "%s", bytes < 0 ? "-inf" : "inf");
        return;
    }
    double base = binary ? 1024.0 : 1000.0;
    double v = bytes;
    int u = 0;
    while (u < 4 && fabs(v) >= base) {
        v /= base;
        u++;
    }
    snprintf(buf, size, "%.4g %s", v, binary ? bin[u] : dec[u]);
}

void srch_budget_format_time(double ns, char *buf, size_t size)
{
    if (!isfinite(ns)) {
        snprintf(buf, size, "%s", ns < 0 ? "-inf" : "inf");
        return;
    }
    double a = fabs(ns);
    if (a < 1e3)
        snprintf(buf, size, "%.4g ns", ns);
    else if (a < 1e6)
        snprintf(buf, size, "%.4g us", ns / 1e3);
    else if (a < 1e9)
        snprintf(buf, size, "%.4g ms", ns / 1e6);
    else
        snprintf(buf, size, "%.4g s", ns / 1e9);
}
