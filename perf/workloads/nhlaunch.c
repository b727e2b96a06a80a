/*
 * nhlaunch.c — run a command and write its resource usage to a file.
 *
 *     nhlaunch RESULT_FILE COMMAND [ARG...]
 *
 * perf/run starts every measured program through this small launcher
 * instead of directly: Linux keeps the peak RSS of the memory image a
 * process had before exec (ru_maxrss of the child would include the whole
 * Python runner that forked it). Forked from this tiny process, the child
 * starts with a peak of about a megabyte. After the command exits, the file
 * gets one line:
 *
 *     exit=N signal=S maxrss_kib=K minflt=F majflt=J user=U sys=Y
 *
 * and the launcher exits with the command's status (128 + signal if it was
 * killed).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s RESULT_FILE COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("nhlaunch: fork");
		return 125;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("nhlaunch: exec");
		_exit(127);
	}
	int st = 0;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0)
		;
	FILE *f = fopen(argv[1], "w");
	if (f) {
		fprintf(f, "exit=%d signal=%d maxrss_kib=%ld minflt=%ld majflt=%ld user=%.6f sys=%.6f\n",
			WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0, ru.ru_maxrss,
			ru.ru_minflt, ru.ru_majflt, (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
			(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
		fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
