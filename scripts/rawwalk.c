/* The floor for a header walk: mmap the archive, read each header's size field, jump over the
 * data, count the blocks that are headers. No checksums, no pax parsing, no output beyond a
 * count. scripts/bench-peers.sh compiles it with `cc -O2` and times it beside tarfs. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t octal(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '7') v = v * 8 + (p[i] - '0');
        else if (v || (p[i] != ' ' && p[i] != 0)) break;
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: rawwalk ARCHIVE\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror(argv[1]); return 1; }
    const unsigned char *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    uint64_t off = 0, headers = 0, len = (uint64_t)st.st_size;
    while (off + 512 <= len && m[off] != 0) {
        uint64_t size = octal(m + off + 124, 12);
        headers++;
        off += 512 + ((size + 511) & ~(uint64_t)511);
    }
    printf("%llu headers\n", (unsigned long long)headers);
    return 0;
}
