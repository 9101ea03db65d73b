/* gad.h: the public C API of libgad, the one header an embedding program includes
 * (installed as <gad/gad.h>; `pkg-config --cflags --libs gad`).
 * Not for: gad's internals (the other headers of include/ are not installed, and the
 * installed libraries export only the gad_ names declared here). */
#ifndef GAD_GAD_H
#define GAD_GAD_H

#define GAD_VERSION_MAJOR 0
#define GAD_VERSION_MINOR 1
#define GAD_VERSION_PATCH 0
#define GAD_VERSION "0.1.0"

#endif
