/* llm/arch.c - the architecture table (contract and sources in llm/arch.h). */
#include "llm/arch.h"

#include <stdio.h>
#include <string.h>

static const struct mq_arch arch_table[] = {
    {.name = "llama", .rope_mode = BE_ROPE_NORM, .act = MQ_FFN_SILU, .flags = MQ_ARCH_ROPE_FREQS},
    {.name = "qwen2", .rope_mode = BE_ROPE_NEOX, .act = MQ_FFN_SILU},
    {.name = "qwen3", .rope_mode = BE_ROPE_NEOX, .act = MQ_FFN_SILU, .flags = MQ_ARCH_QK_NORM},
    {.name = "phi3", .rope_mode = BE_ROPE_NEOX, .act = MQ_FFN_SILU, .flags = MQ_ARCH_FUSED_GATE_UP | MQ_ARCH_LONGROPE},
    {.name = "gemma", .rope_mode = BE_ROPE_NEOX, .act = MQ_FFN_GELU, .flags = MQ_ARCH_EMBD_SCALE | MQ_ARCH_TIED},
    {.name = "gemma2",
     .rope_mode = BE_ROPE_NEOX,
     .act = MQ_FFN_GELU,
     .flags = MQ_ARCH_EMBD_SCALE | MQ_ARCH_TIED | MQ_ARCH_POST_NORMS | MQ_ARCH_GEMMA_Q_SCALE | MQ_ARCH_SOFTCAP,
     .swa_pattern = 2,
     .swa_window_default = 4096,
     .swa_base_is_global = true,
     .n_layer_27b = 46},
    {.name = "gemma3",
     .rope_mode = BE_ROPE_NEOX,
     .act = MQ_FFN_GELU,
     .flags = MQ_ARCH_EMBD_SCALE | MQ_ARCH_POST_NORMS | MQ_ARCH_QK_NORM | MQ_ARCH_GEMMA_Q_SCALE,
     .swa_pattern = 6,
     .n_layer_27b = 62},
};

const struct mq_arch *mq_arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof(arch_table) / sizeof(arch_table[0]); i++)
        if (!strcmp(arch_table[i].name, name))
            return &arch_table[i];
    return NULL;
}

const struct mq_arch *mq_arch_get(int i)
{
    return i >= 0 && (size_t)i < sizeof(arch_table) / sizeof(arch_table[0]) ? &arch_table[i] : NULL;
}

void mq_arch_list(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(arch_table) / sizeof(arch_table[0]) && len < size; i++) {
        int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", arch_table[i].name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}
