package kmod
import "testing"
func BenchmarkParseSmall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ParseIndex(IndexFiles{Dep: []byte("a.ko: b.ko\nb.ko:\n"), Alias: []byte("alias x* a\n")})
	}
}
