/* Header check, first translation unit: the header compiles on its own (it is the
 * first include), twice (include guard), as C99 and as C++17. */
#include "numpack.h"
#include "numpack.h"

#ifdef __cplusplus
#include <type_traits>
static_assert(std::is_same<decltype(&npk_store_open),
                           npk_status (*)(const char *, uint32_t, npk_store **)>::value,
              "npk_store_open has the documented signature");
#endif

/* Used by the other translation unit, so the two are linked together. */
const char *header_tu1_version(void);

const char *header_tu1_version(void) {
    npk_array_info info;
    npk_view_layout layout;
    (void)info;
    (void)layout;
    return npk_version();
}
