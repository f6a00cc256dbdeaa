// Numeric constants shared by every module (one definition instead of one per file, which also
// keeps unity builds free of colliding file-local names).
#pragma once

namespace bevkd {

inline constexpr double kPi = 3.14159265358979323846;  // numpy.pi

}  // namespace bevkd
