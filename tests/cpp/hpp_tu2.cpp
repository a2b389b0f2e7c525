#include "numpack.hpp"

#include <iostream>

std::string numpack_tu1_version();
uint32_t numpack_tu1_dtype();

int main() {
    if (numpack_tu1_version() != numpack::version() || numpack_tu1_dtype() != NPK_DTYPE_FLOAT32) {
        std::cerr << "two translation units disagree\n";
        return 1;
    }
    std::cout << "numpack.hpp from two translation units: ok\n";
    return 0;
}
