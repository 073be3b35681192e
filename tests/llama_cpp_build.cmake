# Included by llama-cpp-python's build just before llama.cpp's own project() (see the Makefile's CMAKE_ARGS).
# llama-cpp-python forces LLAMA_BUILD_COMMON on in the cache, which compiles llama.cpp's "common" library and
# its HTTP client, neither used by the Python package. A normal variable shadows that cache entry in
# llama.cpp's directory scope (policy CMP0077), so those targets are never defined: about 40% less to compile.
set(LLAMA_BUILD_COMMON OFF)
