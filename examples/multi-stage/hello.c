/* A static binary is all the runtime image needs. */
#include <stdio.h>

int main(int argc, char **argv) {
  printf("hello from a %s image built by kiln\n", argc > 1 ? argv[1] : "slim");
  return 0;
}
