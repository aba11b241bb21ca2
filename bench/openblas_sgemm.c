// openblas_sgemm times cblas_sgemm (row-major, float32) as the peer for Lathe's tensor.MatMul.
//
//   openblas_sgemm M N K LAYOUT REPS    LAYOUT is AB, ABt or AtB
//
// It prints one line: the layout, the shape and the best GFLOP/s over REPS products (after one
// warm-up), so that a noisy shared machine is compared at its least disturbed moment.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
	if (argc != 6) {
		fprintf(stderr, "usage: %s M N K AB|ABt|AtB REPS\n", argv[0]);
		return 2;
	}
	int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]), reps = atoi(argv[5]);
	const char *layout = argv[4];
	enum CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
	if (strcmp(layout, "ABt") == 0) {
		tb = CblasTrans;
	} else if (strcmp(layout, "AtB") == 0) {
		ta = CblasTrans;
	} else if (strcmp(layout, "AB") != 0) {
		fprintf(stderr, "unknown layout %s\n", layout);
		return 2;
	}
	float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
	srand(1);
	for (long i = 0; i < (long)m * k; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
	for (long i = 0; i < (long)k * n; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
	int lda = ta == CblasNoTrans ? k : m, ldb = tb == CblasNoTrans ? n : k;
	double best = 1e30;
	for (int r = 0; r <= reps; r++) {
		double t0 = now();
		cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
		double t = now() - t0;
		if (r > 0 && t < best) best = t;
	}
	printf("%s %dx%dx%d %.1f\n", layout, m, n, k, 2.0 * m * n * k / best / 1e9);
	free(a);
	free(b);
	free(c);
	return 0;
}
