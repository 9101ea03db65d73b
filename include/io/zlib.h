/* zlib: DEFLATE decompression (RFC 1951) with the zlib (RFC 1950) and gzip
 * (RFC 1952) wrappers, and a DEFLATE compressor (LZ77 over hash chains + dynamic or
 * fixed Huffman codes, whichever is smaller per block). Bytes in memory in, bytes in
 * memory out; used by PNG, gzip'd IDX files and the PNG writer.
 * Every decoder takes an output size limit, so a small "zip bomb" cannot make it
 * allocate more than the caller allowed. A truncated or corrupt stream gives -1 with
 * a one-line err_get() message (without a file name: the caller prefixes it with
 * err_prefix(path)).
 * Not for: streaming, preset dictionaries (FDICT), raw DEFLATE output, speed records. */
#ifndef GAD_IO_ZLIB_H
#define GAD_IO_ZLIB_H
#include <stddef.h>
#include <stdint.h>

/* Raw DEFLATE: decode one stream starting at in[0] into a new buffer *out (caller
 * frees) of *out_len <= max_out bytes; *used (may be NULL) = input bytes consumed
 * (up to the byte holding the final block's last bit). Returns 0 or -1 (err set,
 * nothing allocated). */
int zlib_inflate_raw(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
                     size_t *out_len, size_t *used);
/* zlib stream (2-byte header, DEFLATE, Adler-32). Bytes after the checksum are
 * ignored. Same ownership and errors as above. */
int zlib_decompress(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
                    size_t *out_len);
/* gzip file: one or more members (concatenated outputs), each with its header
 * (FEXTRA, FNAME, FCOMMENT, FHCRC handled and FHCRC checked), CRC-32 and ISIZE
 * checked. Zero bytes after the last member are ignored, anything else is an error.
 * max_out bounds the total. Same ownership and errors as above. */
int zlib_gunzip(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
                size_t *out_len);

/* Compress to a zlib stream (level 0 = stored blocks only, 1 fastest .. 9 smallest;
 * 6 is a good default). *out is a new buffer the caller frees. Never fails. */
void zlib_compress(const unsigned char *in, size_t n, int level, unsigned char **out, size_t *out_len);
/* Compress to a one-member gzip file (no name, mtime 0: deterministic). */
void zlib_gzip(const unsigned char *in, size_t n, int level, unsigned char **out, size_t *out_len);

/* RFC 1951 section 3.2.5: base values and extra bits of the length codes 257..285
 * and distance codes 0..29, and the order of code-length code lengths. Shared by
 * inflate.c (owner) and deflate.c. */
extern const uint16_t zlib_len_base[29];
extern const uint8_t zlib_len_extra[29];
extern const uint16_t zlib_dist_base[30];
extern const uint8_t zlib_dist_extra[30];
extern const uint8_t zlib_cl_order[19];

/* Running checksums: start with crc = 0 / adler = 1, feed the bytes in order. */
uint32_t zlib_crc32(uint32_t crc, const unsigned char *p, size_t n);
uint32_t zlib_adler32(uint32_t adler, const unsigned char *p, size_t n);

#endif
