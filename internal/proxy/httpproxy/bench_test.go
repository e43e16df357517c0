package httpproxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/identity/identitytest"
)

// BenchmarkHTTPProxy compares a GET straight to an upstream with the same
// GET through warden (token verification from cache, policy, audit record
// before forwarding and after, credential injection, identity assertion),
// through warden with a JSON mask rule, and with audit.sync: os (the
// default fsyncs the decision record before forwarding). Run:
//
//	go test -run '^$' -bench HTTPProxy -benchtime 3s ./internal/proxy/httpproxy/
func BenchmarkHTTPProxy(b *testing.B) {
	body := []byte(`{"id":"7","total":120.5,"customer":{"name":"Ada","email":"ada@example.com"}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(up.Close)
	iss := identitytest.NewIssuer(b)
	targets := "  - { name: api, type: http, url: " + up.URL + ", headers: { Authorization: \"Bearer k\" } }\n" +
		"  - { name: masked, type: http, url: " + up.URL + " }\n"
	policies := "  - name: all\n    allow:\n      - { target: api, http: [{ methods: [GET] }] }\n      - { target: masked, http: [{ methods: [GET] }] }\n" +
		"    mask: [{ target: masked, fields: [customer.email] }]\n"
	_, base := startGateway(b, iss, targets, policies)
	_, baseOS := startGateway(b, iss, targets, policies+"audit: { sync: os }\n")
	tok := iss.Token(b, "bench", nil, time.Hour)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	run := func(b *testing.B, url string, auth bool) {
		req, _ := http.NewRequest("GET", url, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/v1/invoices/7", false) })
	b.Run("warden", func(b *testing.B) { run(b, base+"/t/api/v1/invoices/7", true) })
	b.Run("warden-masked", func(b *testing.B) { run(b, base+"/t/masked/v1/invoices/7", true) })
	b.Run("warden-sync-os", func(b *testing.B) { run(b, baseOS+"/t/api/v1/invoices/7", true) })
}
