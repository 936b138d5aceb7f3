{
  "targets": [
    {
      "target_name": "sanlock_native",
      "sources": ["src/sanlock_native.cc", "src/logging_native.cc", "src/direct_io.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_cc": ["-Wall", "-Wextra", "-std=c++17"]
    }
  ]
}
