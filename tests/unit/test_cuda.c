/* placeholder: replaced by the cuda backend tests */
#include "tests/unit/test.h"
const struct mq_test cuda_tests[] = {{NULL, NULL}};
