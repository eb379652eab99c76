/* main.c — the protium command. */
#include <stdio.h>
#include <string.h>

#include "protium.h"

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "version") == 0) {
    printf("protium %s\n", pt_version());
    return 0;
  }
  fprintf(stderr, "usage: protium version\n");
  return 2;
}
