/* jpeg: a JPEG decoder in the style of stb_image (bytes in, 8-bit pixels out, a
 * one-line error naming the file otherwise), used by io/image's loader.
 * Reads: baseline and extended sequential (SOF0, SOF1) and progressive (SOF2)
 *   Huffman JPEG, 8-bit samples; grayscale (1 component), YCbCr and RGB (3
 *   components: JFIF, Adobe transform flag or component ids decide, as libjpeg
 *   does); any integral sampling factors 1..4 (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1,
 *   3x1...); restart markers; several scans per frame.
 * Output: the same pixels as Pillow's default decode (libjpeg-turbo with its
 *   "islow" integer IDCT, fancy upsampling and integer YCbCr->RGB), computed the
 *   same way, so that they are bit-identical (tests/test_jpeg.c checks it on
 *   every fixture). Grayscale gives c = 1, colour c = 3.
 * EXIF orientation is read (jpeg_exif_orientation) but never applied: Pillow's
 *   Image.open and torchvision's ImageFolder do not apply it either, so a model
 *   trained in PyTorch saw the pixels as stored, and gad feeds it the same ones.
 * Refused with a message saying why: arithmetic coding, 12- and 16-bit samples,
 *   lossless and hierarchical JPEG, CMYK/YCCK (4 components), 2 components,
 *   fractional sampling ratios, DNL (height 0), a file that ends inside a scan or
 *   before its EOI marker (Pillow raises "image file is truncated" on both), a
 *   missing or wrong restart marker (libjpeg would fill the rest of the interval
 *   with gray and only warn).
 * Not matched: libjpeg's block smoothing, which it applies only to a progressive
 *   file whose scans leave low-frequency coefficients unfinished (a file cut after
 *   a scan and closed with EOI, or an unusual scan script): there the pixels differ
 *   by a few levels (the fixture prog_incomplete measures it). */
#ifndef GAD_IO_JPEG_H
#define GAD_IO_JPEG_H
#include "io/image.h"
#include <stddef.h>

/* Decode buf[0..n) (a JPEG starting with FF D8). Returns 0 with img filled (the
 * caller frees with image_free), or -1 with err_get() = "NAME: reason" and img
 * zeroed. Limits: those of io/image.h, and a frame whose blocks could not have
 * been coded in n bytes is refused before any buffer of its size exists. */
int jpeg_decode(const unsigned char *buf, size_t n, const char *name, Image *img);

/* The EXIF orientation tag (1..8) of a JPEG in buf, or 0 when there is none
 * (no APP1 Exif segment, no tag, a malformed one, or not a JPEG). Reads only the
 * markers before the first scan; never fails. */
int jpeg_exif_orientation(const unsigned char *buf, size_t n);

#endif
