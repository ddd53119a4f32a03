/*
 * standalone - runs a libFuzzer target over files without libFuzzer, so that
 * every fuzz corpus is an ordinary test: each argument is a file or a
 * directory of files; each file is one input. "-max_len=N" (the same value
 * libFuzzer gets, from tests/meson.build) is the largest input allowed: a
 * longer corpus file is an error, so the corpus never holds what the fuzzer
 * itself could not reach. Exit 0 when all were run.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long max_len = -1;	/* -max_len=N; -1: no bound */
static long largest;

static int run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data;
	long n;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0) {
		perror(path);
		if (fp)
			fclose(fp);
		return -1;
	}
	if (max_len >= 0 && n > max_len) {
		fprintf(stderr, "%s: %ld bytes, longer than -max_len=%ld\n", path, n, max_len);
		fclose(fp);
		return -1;
	}
	if (n > largest)
		largest = n;
	rewind(fp);
	data = malloc((size_t)n + 1);
	if (data == NULL || fread(data, 1, (size_t)n, fp) != (size_t)n) {
		perror(path);
		fclose(fp);
		free(data);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(data, (size_t)n);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0, errors = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *dir;
		struct dirent *de;

		if (strncmp(argv[i], "-max_len=", 9) == 0) {
			max_len = strtol(argv[i] + 9, NULL, 10);
			continue;
		}
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i]) != 0;
			files++;
			continue;
		}
		dir = opendir(argv[i]);
		while (dir && (de = readdir(dir)) != NULL) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			errors += run_file(path) != 0;
			files++;
		}
		if (dir)
			closedir(dir);
	}
	printf("%d inputs run (largest %ld bytes, -max_len=%ld), %d unreadable or too long\n",
	       files, largest, max_len, errors);
	return errors || files == 0 ? 1 : 0;
}
