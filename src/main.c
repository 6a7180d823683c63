#include <stdio.h>

int main(void)
{
    fputs("scimd: not built yet\n", stderr);
    return 1;
}
