#include <stdio.h>

int main(void)
{
    fputs("scimctl: not built yet\n", stderr);
    return 1;
}
