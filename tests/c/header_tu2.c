/* Header check, second translation unit: includes the header again and calls into the
 * first one and into the library. */
#include "numpack.h"

#include <stdio.h>
#include <string.h>

const char *header_tu1_version(void);

int main(void) {
    const char *a = header_tu1_version();
    const char *b = npk_version();
    if (strcmp(a, b) != 0 || strcmp(b, NPK_VERSION_STRING) != 0) {
        fprintf(stderr, "version mismatch: header %s, library %s\n", NPK_VERSION_STRING, b);
        return 1;
    }
    if (sizeof(npk_status) != 4 || NPK_MAX_NDIM != 32 || npk_dtype_size(NPK_DTYPE_COMPLEX128) != 16) {
        fprintf(stderr, "unexpected header values\n");
        return 1;
    }
    printf("header ok (%s)\n", b);
    return 0;
}
