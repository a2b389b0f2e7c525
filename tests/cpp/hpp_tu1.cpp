// numpack.hpp included from two translation units linked together (no ODR clashes).
#include "numpack.hpp"
#include "numpack.hpp"  // include guard

std::string numpack_tu1_version() { return numpack::version(); }
uint32_t numpack_tu1_dtype() { return numpack::dtype_v<float>; }
