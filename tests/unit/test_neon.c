/* placeholder: replaced by the neon backend tests */
#include "tests/unit/test.h"
const struct mq_test neon_tests[] = {{NULL, NULL}};
