/* tokenizer/unicode.c - UTF-8 as llama.cpp reads it, flags, and the pre-tokenizer splitters.
 *
 * The splitters follow llama.cpp's src/unicode.cpp (unicode_regex_split and its custom
 * splitters); see tokenizer/unicode.h for the contract. */
#include "tokenizer/unicode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

uint16_t mq_unicode_flags(uint32_t cp)
{
    if (cp >= MQ_UNICODE_MAX)
        return MQ_UNICODE_UNDEFINED;
    /* last range whose first <= cp; ranges[0].first == 0 */
    unsigned lo = 0, hi = mq_unicode_n_ranges;
    while (hi - lo > 1) {
        unsigned mid = lo + (hi - lo) / 2;
        if (mq_unicode_ranges[mid].first <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return mq_unicode_ranges[lo].flags;
}

uint32_t mq_unicode_tolower(uint32_t cp)
{
    unsigned lo = 0, hi = mq_unicode_n_lower;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (mq_unicode_lower[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < mq_unicode_n_lower && mq_unicode_lower[lo].cp == cp ? mq_unicode_lower[lo].to : cp;
}

size_t mq_utf8_len(unsigned char lead)
{
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

uint32_t mq_utf8_decode(const char *str, size_t len, size_t *adv)
{
    const unsigned char *s = (const unsigned char *)str;
    *adv = 1;
    if (!(s[0] & 0x80))
        return s[0];
    if (!(s[0] & 0x40))
        return 0xFFFD; /* a continuation byte */
    if (!(s[0] & 0x20)) {
        if (len < 2 || !is_cont(s[1]))
            return 0xFFFD;
        *adv = 2;
        return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (!(s[0] & 0x10)) {
        if (len < 3 || !is_cont(s[1]) || !is_cont(s[2]))
            return 0xFFFD;
        *adv = 3;
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if (!(s[0] & 0x08)) {
        if (len < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3]))
            return 0xFFFD;
        *adv = 4;
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    return 0xFFFD; /* 0xF8..0xFF */
}

size_t mq_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp < MQ_UNICODE_MAX) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

/* The bytes GPT-2 leaves as themselves: '!'..'~', 0xA1..0xAC, 0xAE..0xFF. The others,
 * in byte order, are 0x00..0x20 (33), 0x7F..0xA0 (34) and 0xAD, mapped to U+0100 on. */
uint32_t mq_unicode_byte_to_cp(uint8_t b)
{
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 33 + (uint32_t)(b - 0x7F);
    if (b == 0xAD)
        return 0x100u + 67;
    return b;
}

int mq_unicode_cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp >= 0x100 + 33 && cp < 0x100 + 67)
        return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 67)
        return 0xAD;
    return -1;
}

/* ---- splitting ------------------------------------------------------------------------- */

enum pass {
    P_END = 0, /* ends a family's list */
    /* llama.cpp's hand-written splitters */
    P_GPT2,
    P_LLAMA3,
    P_QWEN2,
    P_QWEN35,
    P_NEWLINES,
    /* expressions llama.cpp gives to std::regex */
    P_PUNCT_RUN,        /* [\p{P}\$\+<=>\^~\|]+ */
    P_PUNCT_RUN_FALCON, /* [\p{P}\$\+<=>\^~\|`]+ */
    P_NUM_RUN,          /* \p{N}+ */
    P_NUM_ONE,          /* \p{N} */
    P_DIGIT3,           /* [0-9][0-9][0-9] */
    P_CRLF_ONE,         /* [\r\n] */
    P_DS_LETTERS,       /* \s?[A-Za-zµÀ-Ö...]+ (deepseek-llm) */
    P_DS_PUNCT,         /* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
    P_TRAIL_WS,         /* \s+$ */
    P_CJK_RUN,          /* [一-龥ࠀ-一가-퟿]+ */
    P_WS_LETTERS,       /* \s?\p{L}+ */
    P_WS_PUNCT,         /* \s?\p{P}+ */
    P_PORO,             /*  ?[^(\s|.,!?…。，、।۔،)]+ */
};

#define MAX_PASSES 7
static const unsigned char family_passes[MQ_SPLIT_COUNT][MAX_PASSES] = {
    [MQ_SPLIT_DEFAULT] = {P_PUNCT_RUN, P_GPT2, P_NUM_RUN, P_DIGIT3},
    [MQ_SPLIT_GPT2] = {P_GPT2},
    [MQ_SPLIT_LLAMA3] = {P_LLAMA3},
    [MQ_SPLIT_QWEN2] = {P_QWEN2},
    [MQ_SPLIT_QWEN35] = {P_QWEN35},
    [MQ_SPLIT_STARCODER] = {P_NUM_ONE, P_GPT2},
    [MQ_SPLIT_FALCON] = {P_PUNCT_RUN_FALCON, P_GPT2, P_DIGIT3},
    [MQ_SPLIT_DEEPSEEK_LLM] = {P_CRLF_ONE, P_DS_LETTERS, P_DS_PUNCT, P_TRAIL_WS, P_CJK_RUN,
                               P_NUM_RUN},
    [MQ_SPLIT_DEEPSEEK_CODER] = {P_CRLF_ONE, P_WS_LETTERS, P_WS_PUNCT, P_CJK_RUN, P_NUM_ONE},
    [MQ_SPLIT_PORO] = {P_PORO},
    [MQ_SPLIT_VIKING] = {P_PORO, P_NUM_ONE},
    [MQ_SPLIT_NEWLINES] = {P_NEWLINES},
};

#define F_WS MQ_UNICODE_WHITESPACE
#define F_L MQ_UNICODE_LETTER
#define F_N MQ_UNICODE_NUMBER
#define F_M MQ_UNICODE_MARK
#define OUT_OF_RANGE 0xFFFFFFFFu

/* One segment [ini, end) being split; words go to out[k++]. Reads past `end` see
 * OUT_OF_RANGE and no flags, as llama.cpp's _get_cpt/_get_flags. */
struct seg {
    const uint32_t *cps;
    const uint16_t *fl;
    size_t end;
    size_t prev_end;
    size_t *out;
    size_t k;
};

static inline uint32_t seg_cpt(const struct seg *s, size_t pos)
{
    return pos < s->end ? s->cps[pos] : OUT_OF_RANGE;
}
static inline uint16_t seg_flags(const struct seg *s, size_t pos)
{
    return pos < s->end ? s->fl[pos] : 0;
}
/* llama.cpp's _add_token: ends a word at `end`, returns its length (possibly 0). */
static inline size_t seg_add(struct seg *s, size_t end)
{
    size_t len = end - s->prev_end;
    if (len > 0)
        s->out[s->k++] = len;
    s->prev_end = end;
    return len;
}

/* 's|'t|'re|'ve|'m|'ll|'d, case-insensitive for llama3/qwen (unicode_tolower); returns the
 * match length at pos (0, 2 or 3). */
static size_t contraction(const struct seg *s, size_t pos, bool icase)
{
    if (seg_cpt(s, pos) != '\'' || pos + 1 >= s->end)
        return 0;
    uint32_t a = seg_cpt(s, pos + 1);
    if (icase)
        a = mq_unicode_tolower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < s->end) {
        uint32_t b = seg_cpt(s, pos + 2);
        if (icase)
            b = mq_unicode_tolower(b);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    return 0;
}

/* unicode_regex_split_custom_gpt2:
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct seg *s, size_t ini)
{
    for (size_t pos = ini; pos < s->end;) {
        const uint32_t cpt = seg_cpt(s, pos);
        const uint16_t flags = seg_flags(s, pos);
        size_t c = contraction(s, pos, false);
        if (c) {
            pos += seg_add(s, pos + c);
            continue;
        }
        uint16_t f2 = cpt == ' ' ? seg_flags(s, pos + 1) : flags;
        if (f2 & F_L) {
            pos += cpt == ' ';
            while (f2 & F_L)
                f2 = seg_flags(s, ++pos);
            seg_add(s, pos);
            continue;
        }
        if (f2 & F_N) {
            pos += cpt == ' ';
            while (f2 & F_N)
                f2 = seg_flags(s, ++pos);
            seg_add(s, pos);
            continue;
        }
        if (!(f2 & (F_WS | F_L | F_N)) && f2) {
            pos += cpt == ' ';
            while (!(f2 & (F_WS | F_L | F_N)) && f2)
                f2 = seg_flags(s, ++pos);
            seg_add(s, pos);
            continue;
        }
        size_t nws = 0;
        while (seg_flags(s, pos + nws) & F_WS)
            nws++;
        if (nws > 1 && seg_cpt(s, pos + nws) != OUT_OF_RANGE) { /* \s+(?!\S) */
            pos += nws - 1;
            seg_add(s, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            seg_add(s, pos);
            continue;
        }
        seg_add(s, ++pos); /* no match */
    }
}

enum num_rule { NUM_UPTO3, NUM_ONE };

/* unicode_regex_split_custom_llama3 / _qwen2 / _qwen35:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * qwen2 has \p{N} for \p{N}{1,3}; qwen35 also [\p{L}\p{M}] for \p{L} (letters) and
 * [^\s\p{L}\p{M}\p{N}] in the punctuation alternative. */
static void split_llama3(struct seg *s, size_t ini, enum num_rule num, bool marks)
{
    const uint16_t word = marks ? (F_L | F_M) : F_L;
    for (size_t pos = ini; pos < s->end;) {
        const uint32_t cpt = seg_cpt(s, pos);
        const uint16_t flags = seg_flags(s, pos);
        size_t c = contraction(s, pos, true);
        if (c) {
            pos += seg_add(s, pos + c);
            continue;
        }
        if (!(cpt == '\r' || cpt == '\n' || (flags & F_N))) {
            if ((flags & word) || (seg_flags(s, pos + 1) & word)) {
                pos++;
                while (seg_flags(s, pos) & word)
                    pos++;
                seg_add(s, pos);
                continue;
            }
        }
        if (flags & F_N) {
            if (num == NUM_ONE) {
                pos++;
            } else {
                size_t ini_n = pos;
                while (seg_flags(s, pos) & F_N) {
                    if (++pos - ini_n >= 3) {
                        seg_add(s, pos);
                        ini_n = pos;
                    }
                }
            }
            seg_add(s, pos);
            continue;
        }
        uint16_t f2 = cpt == ' ' ? seg_flags(s, pos + 1) : flags;
        /* llama.cpp tests the current code point's flags here, then f2 in the loop */
        if (!(f2 & (F_WS | word | F_N)) && flags) {
            pos += cpt == ' ';
            while (!(f2 & (F_WS | word | F_N)) && f2)
                f2 = seg_flags(s, ++pos);
            uint32_t c2 = seg_cpt(s, pos);
            while (c2 == '\r' || c2 == '\n')
                c2 = seg_cpt(s, ++pos);
            seg_add(s, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (seg_flags(s, pos + nws) & F_WS) {
            uint32_t c2 = seg_cpt(s, pos + nws);
            if (c2 == '\r' || c2 == '\n')
                last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { /* \s*[\r\n]+ */
            pos = last_rn;
            seg_add(s, pos);
            continue;
        }
        if (nws > 1 && seg_cpt(s, pos + nws) != OUT_OF_RANGE) {
            pos += nws - 1;
            seg_add(s, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            seg_add(s, pos);
            continue;
        }
        seg_add(s, ++pos);
    }
}

/* unicode_regex_split_custom_newlines: runs of '\n' and runs of anything else. */
static void split_newlines(struct seg *s, size_t ini)
{
    for (size_t pos = ini; pos < s->end;) {
        bool nl = s->cps[pos] == '\n';
        while (pos < s->end && (s->cps[pos] == '\n') == nl)
            pos++;
        seg_add(s, pos);
    }
}

/* ---- std::regex expressions as matchers ----
 * llama.cpp runs these on a text where every code point at or above 0x80 that has the
 * whitespace flag is replaced by 0x0B, and - when the expression names a \p{..} class -
 * every other code point at or above 0x80 by one byte standing for its category
 * ("collapsed"); ASCII stays itself, so the ASCII members of \p{N}, \p{L}, \p{P} are
 * spelled out in llama.cpp's k_ucat_map. \s is then the C locale's: " \t\n\v\f\r". */

static inline uint32_t rx_char(uint32_t cp, uint16_t f)
{
    return cp >= 0x80 && (f & F_WS) ? 0x0B : cp;
}
static inline bool rx_space(uint32_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D);
}
static inline uint16_t rx_cat(uint32_t cp, uint16_t f)
{
    return (f & F_WS) ? 0 : (f & MQ_UNICODE_CATEGORY_MASK);
}
static bool rx_num(uint32_t cp, uint16_t f)
{
    return cp < 0x80 ? (cp >= '0' && cp <= '9') : rx_cat(cp, f) == MQ_UNICODE_NUMBER;
}
static bool rx_letter(uint32_t cp, uint16_t f)
{
    return cp < 0x80 ? ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
                     : rx_cat(cp, f) == MQ_UNICODE_LETTER;
}
static bool rx_punct(uint32_t cp, uint16_t f)
{
    if (cp < 0x80)
        return cp && strchr("!\"#%&'()*,-./:;?@[\\]_{}", (int)cp);
    return rx_cat(cp, f) == MQ_UNICODE_PUNCTUATION;
}

struct cp_range {
    uint32_t lo, hi;
};

static bool in_ranges(uint32_t c, const struct cp_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return true;
    return false;
}

/* deepseek-llm's letter class, transcribed from llama-vocab.cpp */
static const struct cp_range ds_letters[] = {
    {0x0041, 0x005A},   {0x0061, 0x007A},   {0x00B5, 0x00B5},   {0x00C0, 0x00D6},
    {0x00D8, 0x00F6},   {0x00F8, 0x01BA},   {0x01BC, 0x01BF},   {0x01C4, 0x0293},
    {0x0295, 0x02AF},   {0x0370, 0x0373},   {0x0376, 0x0377},   {0x037B, 0x037D},
    {0x037F, 0x037F},   {0x0386, 0x0386},   {0x0388, 0x038A},   {0x038C, 0x038C},
    {0x038E, 0x03A1},   {0x03A3, 0x03F5},   {0x03F7, 0x0481},   {0x048A, 0x052F},
    {0x0531, 0x0556},   {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
/* [!-/:-~！-／：-～‘-‟　-。] */
static const struct cp_range ds_punct[] = {
    {0x0021, 0x002F}, {0x003A, 0x007E}, {0xFF01, 0xFF0F},
    {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002},
};
/* [一-龥ࠀ-一가-퟿] */
static const struct cp_range cjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
/* the characters poro's [^(\s|.,!?…。，、।۔،)] excludes besides \s */
static const uint32_t poro_stop[] = {'(',    '|',    '.',    ',',    '!',    '?',    0x2026,
                                     0x3002, 0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C, ')'};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Membership of the expression's repeated class. */
static bool rx_class(enum pass p, uint32_t cp, uint16_t f)
{
    uint32_t c = rx_char(cp, f);
    switch (p) {
    case P_PUNCT_RUN:
    case P_PUNCT_RUN_FALCON:
        if (c < 0x80 && c && strchr(p == P_PUNCT_RUN ? "$+<=>^~|" : "$+<=>^~|`", (int)c))
            return true;
        return rx_punct(cp, f);
    case P_NUM_RUN:
    case P_NUM_ONE: return rx_num(cp, f);
    case P_DIGIT3: return c >= '0' && c <= '9';
    case P_CRLF_ONE: return c == '\r' || c == '\n';
    case P_DS_LETTERS: return in_ranges(c, ds_letters, N_OF(ds_letters));
    case P_DS_PUNCT: return in_ranges(c, ds_punct, N_OF(ds_punct));
    case P_CJK_RUN: return in_ranges(c, cjk, N_OF(cjk));
    case P_WS_LETTERS: return rx_letter(cp, f);
    case P_WS_PUNCT: return rx_punct(cp, f);
    case P_PORO:
        if (rx_space(c))
            return false;
        for (size_t i = 0; i < N_OF(poro_stop); i++)
            if (c == poro_stop[i])
                return false;
        return true;
    default: return false;
    }
}

/* Length of the expression's match starting exactly at pos (0: none). All of these are
 * "[prefix]? class+", "class" or "class{3}", where the prefix never belongs to the
 * class, so ECMAScript's backtracking reduces to: take the prefix if a class member
 * follows it, then the longest run. */
static size_t rx_match_at(enum pass p, const struct seg *s, size_t pos)
{
    size_t i = pos;
    switch (p) {
    case P_NUM_ONE:
    case P_CRLF_ONE: return rx_class(p, s->cps[i], s->fl[i]) ? 1 : 0;
    case P_DIGIT3:
        for (; i < pos + 3; i++)
            if (i >= s->end || !rx_class(p, s->cps[i], s->fl[i]))
                return 0;
        return 3;
    case P_DS_LETTERS:
    case P_DS_PUNCT:
    case P_WS_LETTERS:
    case P_WS_PUNCT: /* \s?class+ */
        if (rx_space(rx_char(s->cps[i], s->fl[i])) && i + 1 < s->end &&
            rx_class(p, s->cps[i + 1], s->fl[i + 1]))
            i++;
        break;
    case P_PORO: /* " "?class+ */
        if (s->cps[i] == ' ' && i + 1 < s->end && rx_class(p, s->cps[i + 1], s->fl[i + 1]))
            i++;
        break;
    default: break;
    }
    if (!rx_class(p, s->cps[i], s->fl[i]))
        return 0;
    while (i < s->end && rx_class(p, s->cps[i], s->fl[i]))
        i++;
    return i - pos;
}

/* unicode_regex_split_stl: matches and the gaps between them become words. */
static void split_regex(enum pass p, struct seg *s, size_t ini)
{
    if (p == P_TRAIL_WS) { /* \s+$: the segment's trailing whitespace */
        size_t t = s->end;
        while (t > ini && rx_space(rx_char(s->cps[t - 1], s->fl[t - 1])))
            t--;
        seg_add(s, t);
        seg_add(s, s->end);
        return;
    }
    for (size_t pos = ini; pos < s->end;) {
        size_t m = rx_match_at(p, s, pos);
        if (!m) {
            pos++;
            continue;
        }
        seg_add(s, pos);
        pos += m;
        seg_add(s, pos);
    }
    seg_add(s, s->end);
}

static int grow(size_t **a, size_t *cap, size_t want)
{
    if (*cap >= want)
        return MQ_OK;
    size_t c = *cap ? *cap : 64;
    while (c < want)
        c *= 2;
    size_t *p = realloc(*a, c * sizeof(*p));
    if (!p)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu word boundaries", c);
    *a = p;
    *cap = c;
    return MQ_OK;
}

int mq_split_run(struct mq_split *sp, enum mq_split_family family, const uint32_t *cps,
                 const uint16_t *flags, size_t n)
{
    MQ_ASSERT((unsigned)family < MQ_SPLIT_COUNT);
    sp->n = 0;
    if (n == 0)
        return MQ_OK;
    /* a pass never makes more words than code points */
    int rc;
    if ((rc = grow(&sp->len, &sp->cap, n)) < 0 || (rc = grow(&sp->tmp, &sp->tmp_cap, n)) < 0)
        return rc;
    sp->len[0] = n;
    sp->n = 1;
    for (const unsigned char *p = family_passes[family];
         p < family_passes[family] + MAX_PASSES && *p; p++) {
        struct seg s = {.cps = cps, .fl = flags, .out = sp->tmp, .k = 0};
        size_t start = 0;
        for (size_t w = 0; w < sp->n; w++) {
            size_t ini = start;
            s.end = start + sp->len[w];
            s.prev_end = ini;
            start = s.end;
            switch ((enum pass) * p) {
            case P_GPT2: split_gpt2(&s, ini); break;
            case P_LLAMA3: split_llama3(&s, ini, NUM_UPTO3, false); break;
            case P_QWEN2: split_llama3(&s, ini, NUM_ONE, false); break;
            case P_QWEN35: split_llama3(&s, ini, NUM_ONE, true); break;
            case P_NEWLINES: split_newlines(&s, ini); break;
            default: split_regex((enum pass) * p, &s, ini); break;
            }
        }
        MQ_ASSERT(s.k <= n);
        size_t *t = sp->len;
        sp->len = sp->tmp;
        sp->tmp = t;
        size_t tc = sp->cap;
        sp->cap = sp->tmp_cap;
        sp->tmp_cap = tc;
        sp->n = s.k;
    }
    return MQ_OK;
}

void mq_split_release(struct mq_split *sp)
{
    free(sp->len);
    free(sp->tmp);
    memset(sp, 0, sizeof(*sp));
}
