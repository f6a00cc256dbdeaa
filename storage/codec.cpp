#include "storage/codec.h"

#include <zstd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/error.h"

namespace bevkd::storage {
namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

// Per-thread scratch for the shuffled copy of a chunk (teacher chunks are ~12 MB, so it is kept
// between calls rather than reallocated).
std::vector<std::byte>& thread_scratch() {
  thread_local std::vector<std::byte> scratch;
  return scratch;
}

}  // namespace

void byte_shuffle(const std::byte* src, std::byte* dst, std::size_t nbytes, std::size_t itemsize) {
  if (itemsize <= 1) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  const std::size_t n = nbytes / itemsize;
  std::size_t done = 0;
#if defined(__SSE2__)
  if (itemsize == 2) {
    const __m128i lo_mask = _mm_set1_epi16(0x00FF);
    for (; done + 16 <= n; done += 16) {
      const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * done));
      const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * done + 16));
      const __m128i even = _mm_packus_epi16(_mm_and_si128(v0, lo_mask), _mm_and_si128(v1, lo_mask));
      const __m128i odd = _mm_packus_epi16(_mm_srli_epi16(v0, 8), _mm_srli_epi16(v1, 8));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + done), even);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + n + done), odd);
    }
  }
#endif
  for (std::size_t j = 0; j < itemsize; ++j)
    for (std::size_t i = done; i < n; ++i) dst[j * n + i] = src[i * itemsize + j];
  std::memcpy(dst + n * itemsize, src + n * itemsize, nbytes - n * itemsize);
}

void byte_unshuffle(const std::byte* src, std::byte* dst, std::size_t nbytes, std::size_t itemsize) {
  if (itemsize <= 1) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  const std::size_t n = nbytes / itemsize;
  std::size_t done = 0;
#if defined(__SSE2__)
  if (itemsize == 2) {
    const std::byte* a = src;
    const std::byte* b = src + n;
    for (; done + 16 <= n; done += 16) {
      const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + done));
      const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + done));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * done), _mm_unpacklo_epi8(va, vb));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * done + 16), _mm_unpackhi_epi8(va, vb));
    }
  } else if (itemsize == 4) {
    const std::byte* a = src;
    const std::byte* b = src + n;
    const std::byte* c = src + 2 * n;
    const std::byte* d = src + 3 * n;
    for (; done + 16 <= n; done += 16) {
      const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + done));
      const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + done));
      const __m128i vc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + done));
      const __m128i vd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + done));
      const __m128i ab_lo = _mm_unpacklo_epi8(va, vb), ab_hi = _mm_unpackhi_epi8(va, vb);
      const __m128i cd_lo = _mm_unpacklo_epi8(vc, vd), cd_hi = _mm_unpackhi_epi8(vc, vd);
      std::byte* o = dst + 4 * done;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm_unpacklo_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
    }
  }
#endif
  for (std::size_t j = 0; j < itemsize; ++j)
    for (std::size_t i = done; i < n; ++i) dst[i * itemsize + j] = src[j * n + i];
  std::memcpy(dst + n * itemsize, src + n * itemsize, nbytes - n * itemsize);
}

void encode_chunk(const std::byte* raw, std::size_t nbytes, std::size_t itemsize, bool shuffle,
                  const CodecOptions& opts, EncodedChunk* out) {
  const std::byte* src = raw;
  if (shuffle) {
    auto& scratch = thread_scratch();
    scratch.resize(nbytes);
    byte_shuffle(raw, scratch.data(), nbytes, itemsize);
    src = scratch.data();
  }
  ZSTD_CCtx* cctx = thread_cctx();
  BEVKD_CHECK(cctx != nullptr, "zstd: cannot create a compression context (out of memory)");
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, opts.level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, opts.frame_checksum ? 1 : 0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);  // stock HDF5 zstd filters need it
  out->bytes.resize(ZSTD_compressBound(nbytes));
  const std::size_t c = ZSTD_compress2(cctx, out->bytes.data(), out->bytes.size(), src, nbytes);
  BEVKD_CHECK(!ZSTD_isError(c), "zstd compression of a ", nbytes, "-byte chunk failed: ", ZSTD_getErrorName(c));
  if (c >= nbytes) {
    // zstd does not help (tiny or incompressible chunk): store the raw bytes and mark every
    // filter of the pipeline as skipped.
    out->bytes.assign(raw, raw + nbytes);
    out->filter_mask = shuffle ? 0x3u : 0x1u;
    return;
  }
  out->bytes.resize(c);
  out->filter_mask = 0;
}

void decode_chunk(const std::byte* stored, std::size_t stored_bytes, std::uint32_t filter_mask, bool shuffle,
                  std::size_t itemsize, std::byte* dst, std::size_t nbytes) {
  const std::uint32_t pipeline_bits = shuffle ? 0x3u : 0x1u;
  BEVKD_CHECK((filter_mask & ~pipeline_bits) == 0, "chunk filter mask 0x", std::hex, filter_mask,
              " names filters the dataset's pipeline does not have");
  const std::uint32_t zstd_bit = shuffle ? 0x2u : 0x1u;
  const bool zstd = (filter_mask & zstd_bit) == 0;
  const bool unshuffle = shuffle && (filter_mask & 0x1u) == 0;
  const std::byte* plain = stored;
  std::byte* target = unshuffle ? nullptr : dst;
  if (unshuffle) {
    auto& scratch = thread_scratch();
    scratch.resize(nbytes);
    target = scratch.data();
  }
  if (zstd) {
    const unsigned long long content = ZSTD_getFrameContentSize(stored, stored_bytes);
    BEVKD_CHECK(content != ZSTD_CONTENTSIZE_ERROR, "the ", stored_bytes,
                "-byte chunk is not a zstd frame (corrupt header)");
    BEVKD_CHECK(content == ZSTD_CONTENTSIZE_UNKNOWN || content == nbytes, "the zstd frame holds ", content,
                " bytes, the chunk has ", nbytes);
    ZSTD_DCtx* dctx = thread_dctx();
    BEVKD_CHECK(dctx != nullptr, "zstd: cannot create a decompression context (out of memory)");
    const std::size_t r = ZSTD_decompressDCtx(dctx, target, nbytes, stored, stored_bytes);
    BEVKD_CHECK(!ZSTD_isError(r), "zstd decompression failed: ", ZSTD_getErrorName(r), " (", stored_bytes,
                " stored bytes)");
    BEVKD_CHECK(r == nbytes, "zstd decoded ", r, " bytes, the chunk has ", nbytes);
    plain = target;
  } else {
    BEVKD_CHECK(stored_bytes == nbytes, "the uncompressed chunk has ", stored_bytes, " bytes, expected ", nbytes);
    if (!unshuffle) std::memcpy(dst, stored, nbytes);
  }
  if (unshuffle) byte_unshuffle(plain, dst, nbytes, itemsize);
}

std::size_t zstd_decompress(const std::byte* src, std::size_t n, std::byte* dst, std::size_t capacity) {
  const std::size_t r = ZSTD_decompressDCtx(thread_dctx(), dst, capacity, src, n);
  BEVKD_CHECK(!ZSTD_isError(r), "zstd decompression failed: ", ZSTD_getErrorName(r));
  return r;
}

std::uint64_t xxh64(const void* data, std::size_t n) { return XXH64(data, n, 0); }

std::uint64_t xxh64_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  BEVKD_CHECK(f != nullptr, path, ": cannot open to compute its checksum (", std::strerror(errno), ")");
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  std::vector<char> buf(std::size_t{4} << 20);
  while (true) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n > 0) XXH64_update(&state, buf.data(), n);
    if (n < buf.size()) {
      BEVKD_CHECK(!std::ferror(f.get()), path, ": read error while computing its checksum");
      break;
    }
  }
  return XXH64_digest(&state);
}

std::string hex64(std::uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
  return s;
}

std::uint64_t parse_hex64(std::string_view s, std::string_view where) {
  BEVKD_CHECK(s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos, where,
              ": expected 16 lower-case hex digits, found \"", s, "\"");
  return std::stoull(std::string(s), nullptr, 16);
}

}  // namespace bevkd::storage
