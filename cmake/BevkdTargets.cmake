# Helpers shared by every folder's CMakeLists.txt.
#
# bevkd_use_torch(<target>) links LibTorch and, with BEVKD_USE_PCH, reuses ONE precompiled
# <torch/torch.h> (about 0.5 GB, ~35 s to build once) instead of parsing the LibTorch headers
# again in every translation unit (~25 s each at -O2 without it, ~10 s with it).

if(BEVKD_USE_PCH AND NOT TARGET bevkd_torch_pch)
  # Written once: rewriting it on every configure would rebuild the ~35 s PCH each time.
  if(NOT EXISTS "${CMAKE_BINARY_DIR}/bevkd_torch_pch.cpp")
    file(WRITE "${CMAKE_BINARY_DIR}/bevkd_torch_pch.cpp" "// anchor for the shared LibTorch PCH\n")
  endif()
  add_library(bevkd_torch_pch STATIC "${CMAKE_BINARY_DIR}/bevkd_torch_pch.cpp")
  target_link_libraries(bevkd_torch_pch PUBLIC torch)
  target_precompile_headers(bevkd_torch_pch PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:<torch/torch.h>>")
endif()

function(bevkd_use_torch target)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    target_link_libraries(${target} PRIVATE torch)
  else()
    target_link_libraries(${target} PUBLIC torch)
  endif()
  if(BEVKD_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM bevkd_torch_pch)
    if(type STREQUAL "EXECUTABLE")
      # The PCH is built -fPIC (for the libraries); executables get -fPIE, with which GCC
      # rejects the PCH and parses LibTorch again (~35 s instead of ~10 s per file).
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fPIC>)
    endif()
  endif()
endfunction()

# Warnings for bevkd's own code only (never a global flag edit).
function(bevkd_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -Winvalid-pch>)
  if(BEVKD_UNITY_BUILD)
    # A unity batch #includes the .cpp files, so GCC takes a class of one of them that uses a
    # file-local (anonymous-namespace) type for one declared in a header and warns.
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-subobject-linkage>)
  endif()
endfunction()
