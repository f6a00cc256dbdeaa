// The HDF5 zstd filter (registered id 32015, cd_values[0] = compression level) with the exact
// behaviour of the reference HDF5 zstd plugin: forward = one zstd frame of the chunk (content
// size recorded), reverse = decode that frame. Used twice:
//  * bevkd_storage registers it in-process (storage/h5.cpp), so HDF5 can create datasets that
//    declare the filter and H5Dread can decode bevkd shards without a plugin path;
//  * libbevkd_h5zstd.so (storage/h5zstd_plugin.cpp) exports it as a dynamically loaded HDF5
//    plugin, so stock readers (h5py, h5dump, HDFView) decode shards with
//    HDF5_PLUGIN_PATH=<build>/hdf5-plugins — Debian 12 packages no zstd HDF5 plugin.
// No bevkd dependencies: this file is compiled into the plugin on its own.
#pragma once

#include <H5PLextern.h>

namespace bevkd::storage {

inline constexpr H5Z_filter_t kZstdHdf5FilterId = 32015;

// The H5Z_class2_t of the filter.
const H5Z_class2_t* zstd_hdf5_filter_class();

}  // namespace bevkd::storage
