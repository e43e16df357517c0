package mask

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A detCase is one input and the exact substrings a detector must report
// (none for a near miss).
type detCase struct {
	in   string
	want []string
}

func pos(in string, want ...string) detCase {
	if len(want) == 0 {
		want = []string{in}
	}
	return detCase{in, want}
}

func neg(in string) detCase { return detCase{in: in} }

// jwtOf builds a compact JWS from a header JSON text.
func jwtOf(header, payload, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + sig
}

const (
	jwtIO      = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	awsSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	ghToken    = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
	rsaKey     = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq3\nZm9vYmFy\n-----END RSA PRIVATE KEY-----"
	pkcs8Key   = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
	sshKey     = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
	ecKey      = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"
	encKey     = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkq\n-----END ENCRYPTED PRIVATE KEY-----"
	pgpKey     = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0AAAABCAC\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----"
	dsaKey     = "-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQD\n-----END DSA PRIVATE KEY-----"
	certPEM    = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkq\n-----END CERTIFICATE-----"
	pubKeyPEM  = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----"
	stripeLive = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
)

// detectorTables holds, per built-in detector, at least ten true positives
// and ten near misses. TestDetectorTables checks them exactly and logs the
// counts; FuzzScan starts from them.
var detectorTables = map[string][]detCase{
	DetectEmail: {
		pos("john.doe@example.com"),
		pos("a+tag@sub.example.co.uk"),
		pos("USER_1@Example.ORG"),
		pos("x@y.io"),
		pos("first-last@my-domain.com"),
		pos("j%doe@example.com"),
		pos("name@xn--bcher-kva.ch"),
		pos("Contact: <john@example.com>.", "john@example.com"),
		pos("mailto:ops@example.net?subject=hi", "ops@example.net"),
		pos("write to a@b.com.", "a@b.com"),
		pos("メールはjohn@example.comです", "john@example.com"),
		pos("Écrivez à élodie.durand@exemple.fr, merci", "élodie.durand@exemple.fr"),
		pos("Письмо: иван.петров@example.ru", "иван.петров@example.ru"),
		pos("お問い合わせはsupport@example.jpまで", "support@example.jp"),
		pos("a@example.com,b@example.org", "a@example.com", "b@example.org"),
		pos(`{"email":"dev.ops+ci@corp.example.io"}`, "dev.ops+ci@corp.example.io"),
		neg("@example.com"),
		neg("john@"),
		neg("john@localhost"),
		neg("john@example"),
		neg("john@example.c"),
		neg("john@.example.com"),
		neg("john@-example.com"),
		neg("john@example..com"),
		neg("npm i lodash@4.17.21"),
		neg("logo@2x.png"),
		neg("name at example dot com"),
		neg("docker pull image@sha256:abcdef0123"),
		neg("@types/node@18.11.9"),
		neg("follow @warden on social"),
	},
	DetectPhone: {
		pos("+14155552671"),
		pos("+1 415 555 2671"),
		pos("+1 (415) 555-2671"),
		pos("(415) 555-2671"),
		pos("(415)555-2671"),
		pos("415-555-2671"),
		pos("415.555.2671"),
		pos("415 555 2671"),
		pos("1-800-555-0199"),
		pos("+44 20 7946 0958"),
		pos("020 7946 0958"),
		pos("+33 1 23 45 67 89"),
		pos("01 23 45 67 89"),
		pos("01.23.45.67.89"),
		pos("+49 30 123456"),
		pos("030 12345678"),
		pos("+61 2 9876 5432"),
		pos("0412 345 678"),
		pos("0044 20 7946 0958"),
		pos("+81-3-1234-5678"),
		pos("tel:+4915112345678", "+4915112345678"),
		pos("call me at (415) 555-2671 ext. 12", "(415) 555-2671"),
		pos("电话：+86 10 6552 9988，谢谢", "+86 10 6552 9988"),
		neg("2024-01-02 10:11:12"),
		neg("10:11:12"),
		neg("192.168.100.200"),
		neg("v1.20.3"),
		neg("Order 123456789"),
		neg("4155552671"),
		neg("1704067200"),
		neg("+1234567"),
		neg("+1234567890123456"),
		neg("1,234,567,890"),
		neg("build 10.0.19041.1"),
		neg("2023-10-05"),
		neg("12/31/2024"),
		neg("ISBN 978-3-16-148410-0"),
		neg("123e4567-e89b-12d3-a456-426614174000"),
		neg("12345678-1234-1234-1234-123456789012"),
		neg("4111 1111 1111 1111"),
		neg("02 01 2024 10"),
		neg("012345678"),
		neg("000012345678"),
		neg("315-155-2671"),
		neg("123-45-6789"),
	},
	DetectCreditCard: {
		pos("4111111111111111"),
		pos("4111 1111 1111 1111"),
		pos("4111-1111-1111-1111"),
		pos("4012888888881881"),
		pos("4222222222222"),
		pos("5555555555554444"),
		pos("5105 1051 0510 5100"),
		pos("2221000000000009"),
		pos("378282246310005"),
		pos("3782 822463 10005"),
		pos("371449635398431"),
		pos("6011111111111117"),
		pos("6011000990139424"),
		pos("3530111333300000"),
		pos("3566002020360505"),
		pos("30569309025904"),
		pos("3056 930902 5904"),
		pos("6200000000000005"),
		pos("card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
		pos("カード番号4111111111111111です", "4111111111111111"),
		pos(`{"pan":"5555-5555-5555-4444"}`, "5555-5555-5555-4444"),
		neg("4111111111111112"),
		neg("4111 1111 1111 1112"),
		neg("5555555555554445"),
		neg("1234 5678 9012 3456"),
		neg("1704067200000000000"),
		neg("0000000000000000"),
		neg("550e8400-e29b-41d4-a716-446655440000"),
		neg("12345678-1234-1234-1234-123456789012"),
		neg("41111111111111111111"),
		neg("4111-1111-1111-1111-2222"),
		neg("41 1111 1111 1111 11"),
		neg("abc4111111111111111"),
		neg("4111111111111111x"),
		neg("3782822463100051"),
		neg("+44 20 7946 0958"),
		neg("order 123456789 shipped"),
	},
	DetectUSSSN: {
		pos("123-45-6789"),
		pos("123 45 6789"),
		pos("078-05-1120"),
		pos("SSN 123456789", "123456789"),
		pos("ssn: 123456789", "123456789"),
		pos("SSN#123456789", "123456789"),
		pos(`{"ssn": "123456789"}`, "123456789"),
		pos("social security number: 123456789", "123456789"),
		pos("Social-Security-No. 123456789", "123456789"),
		pos("SSN no. 123456789", "123456789"),
		pos("customer_ssn=123456789", "123456789"),
		pos("my SSN is 665-12-3456, thanks", "665-12-3456"),
		pos("numéro de sécurité sociale US : 899-99-9999", "899-99-9999"),
		neg("Order 123456789"),
		neg("order number: 123456789"),
		neg("123456789"),
		neg("000-12-3456"),
		neg("666-12-3456"),
		neg("900-12-3456"),
		neg("999-12-3456"),
		neg("123-00-4567"),
		neg("123-45-0000"),
		neg("123-45-67890"),
		neg("1123-45-6789"),
		neg("123-456-789"),
		neg("123-45-6789-1"),
		neg("SSN 1234567890"),
		neg("ssn 000123456"),
		neg("lessn 123456789"),
		neg("415-555-2671"),
		neg("2024-01-02"),
		neg("123-45 6789"),
	},
	DetectIBAN: {
		pos("GB82 WEST 1234 5698 7654 32"),
		pos("GB82WEST12345698765432"),
		pos("DE89 3704 0044 0532 0130 00"),
		pos("FR14 2004 1010 0505 0001 3M02 606"),
		pos("NL91 ABNA 0417 1643 00"),
		pos("ES91 2100 0418 4502 0005 1332"),
		pos("IT60 X054 2811 1010 0000 0123 456"),
		pos("BE68 5390 0754 7034"),
		pos("CH93 0076 2011 6238 5295 7"),
		pos("AT61 1904 3002 3457 3201"),
		pos("NO93 8601 1117 947"),
		pos("PL61 1090 1014 0000 0712 1981 2874"),
		pos("SE45 5000 0000 0583 9825 7466"),
		pos("Überweisung an DE89370400440532013000 bis Freitag", "DE89370400440532013000"),
		pos("iban: gb82west12345698765432", "gb82west12345698765432"),
		neg("GB83 WEST 1234 5698 7654 32"),
		neg("GB82 WEST 1234 5698 7654 3"),
		neg("GB82WEST123456987654321"),
		neg("DE89370400440532013001"),
		neg("DE8937040044053201300"),
		neg("XX82WEST12345698765432"),
		neg("GB82 WES T123 4569 8765 432"),
		neg("ABGB82WEST12345698765432"),
		neg("GB82WEST12345698765432X"),
		neg("US12 3456 7890 1234 5678"),
		neg("AB12 CD34 EF56"),
		neg("ISO8601 2024-01-02T10:11:12Z"),
	},
	DetectIP: {
		pos("10.0.0.1"),
		pos("192.168.1.254"),
		pos("8.8.8.8"),
		pos("255.255.255.255"),
		pos("0.0.0.0"),
		pos("host 172.16.0.12:5432", "172.16.0.12"),
		pos("route 10.0.0.0/8 via", "10.0.0.0"),
		pos("client=203.0.113.7.", "203.0.113.7"),
		pos("2001:db8::8a2e:370:7334"),
		pos("2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
		pos("fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a"),
		pos("::1"),
		pos("::ffff:192.0.2.128"),
		pos("[2001:db8::1]:443", "2001:db8::1"),
		pos("接続元 2001:db8::42 から", "2001:db8::42"),
		pos("peer fe80::1: unreachable", "fe80::1"),
		neg("1.2.3.4.5"),
		neg("v1.20.3"),
		neg("1.2.3"),
		neg("256.1.1.1"),
		neg("1.2.3.256"),
		neg("01.2.3.4"),
		neg("192.168.1.1a"),
		neg("3.14159"),
		neg("build 10.0.19041.1"),
		neg("ver1.2.3.4"),
		neg("10:11:12"),
		neg("12:30:45.123"),
		neg("00:1A:2B:3C:4D:5E"),
		neg("1:2:3:4:5:6:7:8:9"),
		neg("fe80:::1"),
		neg("std::vector<int>"),
		neg("2001:db8::g1"),
		neg("a.b.c.d"),
	},
	DetectJWT: {
		pos(jwtIO),
		pos("Authorization: Bearer "+jwtIO, jwtIO),
		pos(`{"token":"`+jwtIO+`"}`, jwtIO),
		pos(jwtIO+".", jwtIO),
		pos(jwtOf(`{"alg":"RS256","kid":"k1"}`, `{"sub":"agent-1"}`, "c2lnbmF0dXJl")),
		pos(jwtOf(`{"typ":"JWT","alg":"ES256"}`, `{}`, "MEUCIQ")),
		pos(jwtOf("{\n  \"alg\": \"HS512\"\n}", `{"a":1}`, "sig_-0")),
		pos(jwtOf(`{ "alg": "PS256" }`, `{"a":1}`, "x")),
		pos(jwtOf(`{"alg":"none"}`, `{"sub":"x"}`, "")),
		pos(jwtOf(`{"alg":"RSA-OAEP","enc":"A256GCM"}`, "key", "iv") + ".ct.tag"),
		pos("トークン:"+jwtIO+"。", jwtIO),
		pos(jwtOf(`{"\u0061lg":"HS256"}`, `{}`, "sig")),
		pos(jwtOf(`{"jwk":{"kty":"EC","crv":"P-256","x":"a,}]\"b"},"x5c":["c","d"],"n":1.5e3,"b":true,"alg":"ES256"}`, `{}`, "sig")),
		neg("eyJhbGciOiJIUzI1NiJ9"),
		neg("eyJhbGciOiJIUzI1NiJ9.payload"),
		neg(jwtOf(`{"typ":"JWT"}`, `{}`, "sig")),
		neg(jwtOf(`{"jwk":{"alg":"ES256"}}`, `{}`, "sig")),
		neg(jwtOf(`{"alg":"HS256"`, `{}`, "sig")),
		neg(jwtOf(`{"alg":1}`, `{}`, "sig")),
		neg(jwtOf(`["alg"]`, `{}`, "sig")),
		neg(jwtOf(`not json`, `{}`, "sig")),
		neg("a.b.c"),
		neg("www.example.com"),
		neg("eyes.on.you"),
		neg("eyJ!!.eyJ.sig"),
		neg(jwtIO + ".extra"),
		neg("x" + jwtIO),
		neg("they.say.hello"),
	},
	DetectAPIKey: {
		pos("AKIAIOSFODNN7EXAMPLE"),
		pos("ASIAY34FZKBOKMUTVV7A"),
		pos("aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
		pos("aws_secret_access_key = "+awsSecret, awsSecret),
		pos("AWS_SECRET_ACCESS_KEY="+awsSecret, awsSecret),
		pos(`"SecretAccessKey": "`+awsSecret+`"`, awsSecret),
		pos(ghToken),
		pos("gho_" + strings.Repeat("a1B2", 9)),
		pos("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"),
		pos("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
		pos("xapp-1-A0123456789-1234567890123-abcdef0123456789"),
		pos(stripeLive),
		pos("rk_live_51H8sdfJHkjhsdf8734KJHkjh"),
		pos("glpat-xxxxxxxxxxxxxxxxxxxx"),
		pos("AIzaSyA1234567890abcdefghijklmnopqrstuv"),
		pos("sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"),
		pos("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"),
		pos("sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz0123456789ABCD"),
		pos("トークン="+ghToken+"です", ghToken),
		neg("AKIA"),
		neg("AKIAIOSFODNN7EXAMPL"),
		neg("AKIAIOSFODNN7EXAMPLEX"),
		neg("akiaiosfodnn7example"),
		neg("XAKIAIOSFODNN7EXAMPLE"),
		neg("ghp_short"),
		neg("xoxb-"),
		neg("xoxb-123"),
		neg("sk_live_"),
		neg("mask_live_4eC39HqLyjWDarjtT1zdp7dc"),
		neg("the secret is " + awsSecret),
		neg("aws_secret_access_key = tooShort"),
		neg("aws_secret_access_key = " + awsSecret + "X"),
		neg("github_pat_short"),
		neg("sk-learn-compatible-estimator-interface-design"),
		neg("pk_live_4eC39HqLyjWDarjtT1zdp7dc"),
		neg("task-1234"),
	},
	DetectPrivateKey: {
		pos(rsaKey),
		pos(pkcs8Key),
		pos(sshKey),
		pos(ecKey),
		pos(encKey),
		pos(pgpKey),
		pos(dsaKey),
		pos("key:\n"+rsaKey+"\nend", rsaKey),
		pos(`{"private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"}`,
			`-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----`),
		pos("truncated: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA"),
		pos(rsaKey+"\n"+certPEM+"\n"+ecKey, rsaKey, ecKey),
		neg(certPEM),
		neg(pubKeyPEM),
		neg("-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA\n-----END RSA PUBLIC KEY-----"),
		neg("-----BEGIN CERTIFICATE REQUEST-----\nMIIC\n-----END CERTIFICATE REQUEST-----"),
		neg("-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----"),
		neg("-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQEN\n-----END PGP PUBLIC KEY BLOCK-----"),
		neg("-----BEGIN PGP SIGNATURE-----\niQEz\n-----END PGP SIGNATURE-----"),
		neg("----BEGIN RSA PRIVATE KEY-----\nMIIE\n----END RSA PRIVATE KEY-----"),
		neg("-----BEGIN PRIVATE KEY\nMIIEvQ"),
		neg("store the private key in the vault"),
		neg("-----BEGIN ENCRYPTED MESSAGE-----\nabc\n-----END ENCRYPTED MESSAGE-----"),
		neg("-----BEGIN SSH2 PUBLIC KEY-----\nAAAAB3\n-----END SSH2 PUBLIC KEY-----"),
	},
}

func TestDetectorTables(t *testing.T) {
	for _, name := range BuiltinNames() {
		cases := detectorTables[name]
		t.Run(name, func(t *testing.T) {
			d, ok := Builtin(name)
			if !ok {
				t.Fatalf("Builtin(%q) not found", name)
			}
			var tp, fn, tn, fp int
			for _, c := range cases {
				spans := d.Find(c.in)
				checkSpans(t, c.in, spans)
				got := substrings(c.in, spans)
				ok := slices.Equal(got, c.want)
				switch {
				case len(c.want) > 0 && ok:
					tp++
				case len(c.want) > 0:
					fn++
				case len(got) == 0:
					tn++
				default:
					fp++
				}
				if !ok {
					t.Errorf("Find(%q) = %q, want %q", c.in, got, c.want)
				}
			}
			if tp+fn < 10 || tn+fp < 10 {
				t.Errorf("table has %d positives and %d negatives; want at least 10 of each", tp+fn, tn+fp)
			}
			t.Logf("%-12s positives %2d/%2d found, near misses %2d/%2d rejected (false positives: %d)",
				name, tp, tp+fn, tn, tn+fp, fp)
		})
	}
}

// TestCleanCorpus runs every detector over innocuous values a database or
// an API returns all the time; none may be flagged.
func TestCleanCorpus(t *testing.T) {
	clean := []string{
		"2024-01-02 10:11:12",
		"2024-01-02T10:11:12.123456Z",
		"2024-01-02 10:11:12.123+02",
		"Tue, 02 Jan 2024 10:11:12 GMT",
		"12/31/2024",
		"31.12.2024",
		"550e8400-e29b-41d4-a716-446655440000",
		"00000000-0000-0000-0000-000000000000",
		"123e4567-e89b-12d3-a456-426614174000",
		"Order 123456789",
		"order #987654321 shipped",
		"invoice INV-2024-000123",
		"v1.20.3",
		"1.2.3.4.5",
		"go1.26.8",
		"10.0.19041.1",
		"$1,234,567.89",
		"€ 1.234.567,89",
		"1704067200",
		"1704067200123",
		"3.14159265358979",
		"-122.4194155, 37.7749295",
		"da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"ISBN 978-3-16-148410-0",
		"/var/lib/postgresql/16/main/base/16384/2619",
		"SELECT count(*) FROM orders WHERE id = 123456789",
		"std::vector<int> v; a::b::c()",
		"ratio 16:9, time 10:30:00",
		"The quick brown fox jumps over the lazy dog.",
		"Привет, мир! 你好，世界！ مرحبا بالعالم",
		"lodash@4.17.21 react@18.2.0",
		"SKU 4006381333931",
		"tracking 1Z999AA10123456784",
		"lat/long 48.8566 2.3522",
		"bytes 1048576 4194304 16777216",
		"pg_stat_statements.max = 10000",
		"connection from [local] pid=12345",
		"task-1234 risk-assessment",
		"AB12 CD34 EF56 GH78",
		"eyes.on.the.prize",
		"the secret is out",
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
	}
	sc := allBuiltins()
	for _, s := range clean {
		if hits := sc.Scan(s); len(hits) > 0 {
			t.Errorf("Scan(%q) = %v, want no hits (%q)", s, hits, hitStrings(s, hits))
		}
	}
	t.Logf("clean corpus: %d values, 0 false positives", len(clean))
}

func allBuiltins() *Scanner {
	var ds []Detector
	for _, n := range BuiltinNames() {
		d, _ := Builtin(n)
		ds = append(ds, d)
	}
	return NewScanner(ds...)
}

func substrings(s string, spans []Span) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, s[sp.Start:sp.End])
	}
	return out
}

func hitStrings(s string, hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Detector+":"+s[h.Start:h.End])
	}
	return out
}

// checkSpans asserts the Detector contract: in range, non-empty, sorted,
// non-overlapping.
func checkSpans(t testing.TB, s string, spans []Span) {
	t.Helper()
	prev := 0
	for i, sp := range spans {
		if sp.Start < prev || sp.Start >= sp.End || sp.End > len(s) {
			t.Fatalf("span %d %v of %q breaks the contract (prev end %d, len %d): %v", i, sp, s, prev, len(s), spans)
		}
		prev = sp.End
	}
}

func TestBuiltin(t *testing.T) {
	want := []string{"email", "phone", "credit_card", "us_ssn", "iban", "ip", "jwt", "api_key", "private_key"}
	if got := BuiltinNames(); !slices.Equal(got, want) {
		t.Fatalf("BuiltinNames() = %v, want %v", got, want)
	}
	for _, n := range want {
		d, ok := Builtin(n)
		if !ok || d.Name() != n {
			t.Errorf("Builtin(%q) = %v, %v", n, d, ok)
		}
	}
	if _, ok := Builtin("ssn"); ok {
		t.Error(`Builtin("ssn") found; names must match exactly`)
	}
}

func TestRegex(t *testing.T) {
	d, err := Regex("employee", `\bE\d{6}\b`)
	if err != nil {
		t.Fatal(err)
	}
	if got := substrings("ids E123456, E654321 and X123456", d.Find("ids E123456, E654321 and X123456")); !slices.Equal(got, []string{"E123456", "E654321"}) {
		t.Errorf("Find = %q", got)
	}
	if d.Name() != "employee" {
		t.Errorf("Name = %q", d.Name())
	}

	// A "mask" group reports only the labelled value.
	d, err = Regex("password", `(?i)password\s*[=:]\s*(?P<mask>\S+)`)
	if err != nil {
		t.Fatal(err)
	}
	in := "user=bob password=hunter2 PASSWORD: s3cr3t"
	if got := substrings(in, d.Find(in)); !slices.Equal(got, []string{"hunter2", "s3cr3t"}) {
		t.Errorf("Find = %q", got)
	}

	for _, p := range []string{``, `a*`, `(?:x)?`, `\b`, `(?m)^`, `$`, `a|`, `(a|b){0,3}`, `(?P<mask>a*)b`, `(?P<mask>a)?`, `x{0}`} {
		if _, err := Regex("bad", p); err == nil {
			t.Errorf("Regex(%q) accepted a pattern that matches the empty string", p)
		} else if p != `` && !strings.Contains(err.Error(), ErrEmptyMatch.Error()) {
			t.Errorf("Regex(%q) = %v, want ErrEmptyMatch", p, err)
		}
	}
	for _, p := range []string{`a+`, `\d{3}`, `x(y)?`, `\bfoo\b`, `[a-z]{1,3}`, `(a|bc)+`} {
		if _, err := Regex("good", p); err != nil {
			t.Errorf("Regex(%q) = %v", p, err)
		}
	}
	if _, err := Regex("bad", `(`); err == nil {
		t.Error("Regex accepted an invalid pattern")
	}
	if _, err := Regex("", `a`); err == nil {
		t.Error("Regex accepted an empty name")
	}
	if _, err := Regex("long", strings.Repeat("a", maxPatternLen+1)); err == nil {
		t.Error("Regex accepted an oversized pattern")
	}
}

// TestPrefilterAgreement: Find (which computes its own statistics) and the
// scanner's shared statistics path must agree.
func TestPrefilterAgreement(t *testing.T) {
	for name, cases := range detectorTables {
		d, _ := Builtin(name)
		for _, c := range cases {
			st := statsOf(c.in)
			a := fmt.Sprint(d.Find(c.in))
			b := fmt.Sprint(d.(builtin).find(nil, c.in, st))
			if a != b {
				t.Errorf("%s(%q): Find %s, find %s", name, c.in, a, b)
			}
		}
	}
}
