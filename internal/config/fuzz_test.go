package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that no error
// message carries the password.
func FuzzParse(f *testing.F) {
	good, err := os.ReadFile(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(base))
	f.Add([]byte("a: ${X:-${Y}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parse(data, "warden.yaml", lookup)
		// The invariant is about the password field: a config that puts
		// the secret into a field whose value errors quote (a target
		// name, say) has published it itself.
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "WARDEN_TEST_PASSWORD") && !strings.HasPrefix(strings.TrimSpace(line), "password:") {
				return
			}
		}
		if err != nil && strings.Contains(err.Error(), testEnv["WARDEN_TEST_PASSWORD"]) {
			t.Fatalf("error leaks the password: %v", err)
		}
	})
}
