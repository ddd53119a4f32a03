/*
 * maxrss - run a program with an address-space limit and report the peak
 * resident set size of that program alone (wait4's ru_maxrss).
 *
 *   maxrss OUTFILE LIMIT_BYTES PROGRAM [ARG...]
 *
 * Writes "KIB CPU\n" (the peak RSS in KiB and the CPU seconds, user plus
 * system, of that program) to OUTFILE and exits with the
 * program's exit status (128 + signal if it was killed). A small process
 * of its own, so the figure is not inflated by a large parent: Linux keeps
 * the RSS high-water mark of the memory a child had before exec.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *fp;

	if (argc < 4) {
		fprintf(stderr, "usage: maxrss OUTFILE LIMIT_BYTES PROGRAM [ARG...]\n");
		return 64;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 71;
	}
	if (pid == 0) {
		struct rlimit rl;

		rl.rlim_cur = rl.rlim_max = strtoull(argv[2], NULL, 10);
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			perror("setrlimit");
		execv(argv[3], argv + 3);
		perror(argv[3]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) != pid) {
		perror("wait4");
		return 71;
	}
	fp = fopen(argv[1], "w");
	if (fp == NULL ||
	    fprintf(fp, "%ld %.3f\n", ru.ru_maxrss,
		    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6) < 0 ||
	    fclose(fp) != 0) {
		perror(argv[1]);
		return 71;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
