/* test.h: the tiny test framework. A test file defines tests with TEST(name) { ... };
 * the Makefile collects every TEST(...) line into the runner's registry, so adding a
 * test needs no list edited by hand. Each test runs in its own process (a crash is a
 * failure, not the end of the run). CHECK* record a failure and go on; REQUIRE*
 * end the test. Fixture files are read from tests/fixtures/ (run from the repo root). */
#ifndef GAD_TEST_H
#define GAD_TEST_H
#include <math.h>
#include <stdio.h>
#include <stddef.h>

#define TEST(name) void test_##name(void); void test_##name(void)

extern int test_failures;
void test_fail(const char *file, int line, const char *fmt, ...);
/* Largest |a-b| / (atol + rtol*|b|) style check over arrays; prints the worst
 * difference (always, so a log shows the margin). Returns 1 if within tolerance. */
int test_close(const char *what, const float *a, const float *b, size_t n, float atol, float rtol,
               const char *file, int line);
/* Path of a fixture file, e.g. fixture("ops/conv1.bin"). Static buffer. */
const char *fixture(const char *rel);
/* A scratch directory private to this test process (created on demand). */
const char *test_tmpdir(void);
/* test_tmpdir()/name (4 rotating static buffers). */
const char *test_path(const char *name);
/* A whole file (at most 64 MiB) in a new buffer the caller frees, or NULL. */
unsigned char *test_slurp(const char *path, size_t *len);
/* Write len bytes to path (plainly; asserts on failure). */
void test_spit(const char *path, const void *data, size_t len);

#define CHECK(c) do { if (!(c)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #c); } while (0)
#define CHECKF(c, ...) do { if (!(c)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(c) do { if (!(c)) { test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #c); return; } } while (0)
#define CHECK_CLOSE(what, a, b, n, atol, rtol) test_close(what, a, b, n, atol, rtol, __FILE__, __LINE__)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); if (!(fabs(a_ - b_) <= (tol))) \
    test_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| > %g", #a, a_, #b, b_, (double)(tol)); } while (0)

#endif
