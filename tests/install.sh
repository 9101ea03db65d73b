#!/bin/sh
# install.sh TMP: `make install` into the prefix TMP/prefix, then check what a user of
# the installed tool and library meets: the installed gad finds its bundled files from
# another folder, gad(1) has a section for every command of --help, libgad.a and
# libgad.so define only gad_ names, examples/explain.c builds with pkg-config against
# each library (it defines its own gemm) and runs; `make uninstall` leaves no file.
# Run by tests/test_user_cli.c from the repository's root; prints what failed, exits 1.
set -u
T=$1 P=$1/prefix CC=${CC:-cc}
fail() { echo "install.sh: $*"; exit 1; }
make -s install PREFIX="$P" >"$T/make.log" 2>&1 || { cat "$T/make.log"; fail "make install failed"; }
for f in bin/gad lib/libgad.a lib/libgad.so lib/libgad.so.0 include/gad/gad.h lib/pkgconfig/gad.pc \
         share/man/man1/gad.1 share/gad/weights/resnet18.safetensors share/gad/data/fashion-pc-images-idx3-ubyte.gz; do
  [ -e "$P/$f" ] || fail "$f not installed"
done
(cd "$T" && "$P/bin/gad" tour ig >tour.txt 2>&1) || { cat "$T/tour.txt"; fail "the installed gad did not find its files"; }
grep -q "share/gad/weights/resnet18.safetensors" "$T/tour.txt" || fail "the installed gad did not use its share folder"
for c in $("$P/bin/gad" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  grep -q "^\.SH \"gad $c\"" "$P/share/man/man1/gad.1" || fail "gad.1 has no section for $c"
done
"$P/bin/gad" --version | grep -q "$(pkg-config --modversion "$P/lib/pkgconfig/gad.pc")" || fail "gad.pc's version is not gad's"
bad=$(nm -g --defined-only "$P/lib/libgad.a" | awk 'NF == 3 && $3 !~ /^gad_/ {print $3}')
[ -z "$bad" ] || fail "libgad.a exports names without gad_: $(echo $bad | head -c 300)"
bad=$(nm -D --defined-only "$P/lib/libgad.so" | awk 'NF == 3 && $3 !~ /^gad_/ {print $3}')
[ -z "$bad" ] || fail "libgad.so exports names without gad_: $(echo $bad | head -c 300)"
n=$(nm -D --defined-only "$P/lib/libgad.so" | grep -c ' T gad_')
[ "$n" -ge 10 ] || fail "libgad.so exports $n gad_ functions"
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
W="$P/share/gad/weights/resnet18.safetensors" I=tests/fixtures/jpeg/photo_420.jpg
$CC -std=c99 -Wall -Wextra -pedantic -Werror examples/explain.c $(pkg-config --cflags gad) -o "$T/ex_so" \
  $(pkg-config --libs gad) -Wl,-rpath,"$P/lib" -lm || fail "the example did not build against libgad.so"
$CC -std=c99 -Wall -Wextra -pedantic -Werror examples/explain.c $(pkg-config --cflags gad) -o "$T/ex_a" \
  "$P/lib/libgad.a" $(pkg-config --static --libs-only-l gad | sed 's/-lgad//') -lm || fail "the example did not build against libgad.a"
for e in ex_so ex_a; do
  "$T/$e" "$W" "$I" ig >"$T/$e.txt" 2>&1 || { cat "$T/$e.txt"; fail "$e failed"; }
  grep -q "class 0 (Pullover)" "$T/$e.txt" && grep -q "ig map: strongest" "$T/$e.txt" || { cat "$T/$e.txt"; fail "$e printed something else"; }
done
cmp -s "$T/ex_so.txt" "$T/ex_a.txt" || fail "the two builds of the example disagree"
"$T/ex_a" "$W" no-such.jpg >/dev/null 2>"$T/err.txt" && fail "a missing image did not fail"
grep -q "no-such.jpg" "$T/err.txt" || fail "the error does not name the file: $(cat "$T/err.txt")"
make -s uninstall PREFIX="$P" >/dev/null 2>&1 || fail "make uninstall failed"
left=$(find "$P" -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left $left"
echo "install.sh: ok"
