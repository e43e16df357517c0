package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/warden-gateway/warden/internal/identity"
)

// Defaults shared by `warden token` and `warden demo`, so a token minted
// with no flags works against the demo.
const (
	defaultDevIssuer   = "http://127.0.0.1:5556"
	defaultDevAudience = "warden"
	defaultDevKey      = "warden-dev-issuer.pem"
)

// execCredentialAPIVersion is the client authentication API kubectl's
// exec credential plugins speak (client.authentication.k8s.io/v1, GA in
// Kubernetes 1.22), the one `warden kubeconfig` writes.
const execCredentialAPIVersion = "client.authentication.k8s.io/v1"

// tokenSource is where `warden token` gets the agent's token: minted by
// the development issuer (the default), read from a file, or fetched from
// a real identity provider with the OAuth 2.0 client credentials grant
// (RFC 6749 §4.4). `warden kubeconfig` registers the same flags and
// passes them on to the exec credential plugin it writes.
type tokenSource struct {
	// Development issuer.
	keyPath, issuer, audience, sub string
	claims                         []string
	ttl                            time.Duration
	// A token obtained elsewhere.
	tokenFile string
	// Client credentials grant.
	tokenURL, clientID, secretFile, secretEnv string
	scopes                                    []string

	fs *pflag.FlagSet
}

func (ts *tokenSource) register(fs *pflag.FlagSet) {
	ts.fs = fs
	fs.StringVar(&ts.keyPath, "issuer-key", defaultDevKey, "development issuer key file (PEM; created if missing)")
	fs.StringVar(&ts.issuer, "issuer", defaultDevIssuer, "development issuer URL (iss)")
	fs.StringVar(&ts.audience, "audience", defaultDevAudience, "audience: aud of a minted token; with --token-url, the audience parameter sent to the identity provider (only when given)")
	fs.StringVar(&ts.sub, "sub", "", "subject (sub) of a token minted by the development issuer")
	fs.StringArrayVar(&ts.claims, "claim", nil, "extra claim key=value of a minted token (repeat a key for a list; groups is always a list)")
	fs.DurationVar(&ts.ttl, "ttl", 15*time.Minute, "lifetime of a minted token")
	fs.StringVar(&ts.tokenFile, "token-file", "", "read the token from this file instead of minting one")
	fs.StringVar(&ts.tokenURL, "token-url", "", "fetch the token from this OAuth 2.0 token endpoint with the client credentials grant")
	fs.StringVar(&ts.clientID, "client-id", "", "with --token-url: the OAuth 2.0 client id")
	fs.StringVar(&ts.secretFile, "client-secret-file", "", "with --token-url: a file holding the client secret")
	fs.StringVar(&ts.secretEnv, "client-secret-env", "", "with --token-url: the environment variable holding the client secret")
	fs.StringArrayVar(&ts.scopes, "scope", nil, "with --token-url: a scope to request (repeatable)")
}

func (ts *tokenSource) changed(name string) bool { return ts.fs.Changed(name) }

// mode checks that the flags name one source, and returns it: "dev",
// "file" or "oauth2".
func (ts *tokenSource) mode() (string, error) {
	devFlags := []string{"issuer-key", "issuer", "sub", "claim", "ttl"}
	oauthFlags := []string{"client-id", "client-secret-file", "client-secret-env", "scope"}
	var dev, oauth []string
	for _, f := range devFlags {
		if ts.changed(f) {
			dev = append(dev, "--"+f)
		}
	}
	for _, f := range oauthFlags {
		if ts.changed(f) {
			oauth = append(oauth, "--"+f)
		}
	}
	switch {
	case ts.tokenFile != "":
		if ts.tokenURL != "" || len(dev) > 0 || len(oauth) > 0 || ts.changed("audience") {
			return "", errors.New("--token-file reads a token as it is: it goes with none of the flags that mint or fetch one")
		}
		return "file", nil
	case ts.tokenURL != "":
		if len(dev) > 0 {
			return "", fmt.Errorf("--token-url fetches a token from an identity provider: %s belong to the development issuer", strings.Join(dev, ", "))
		}
		if ts.clientID == "" {
			return "", errors.New("--token-url needs --client-id")
		}
		if (ts.secretFile == "") == (ts.secretEnv == "") {
			return "", errors.New("--token-url needs one of --client-secret-file and --client-secret-env")
		}
		u, err := url.Parse(ts.tokenURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			return "", fmt.Errorf("--token-url %q must be an https:// URL (http:// only for a loopback host): the client secret crosses it", ts.tokenURL)
		}
		return "oauth2", nil
	}
	if len(oauth) > 0 {
		return "", fmt.Errorf("%s go with --token-url", strings.Join(oauth, ", "))
	}
	if ts.sub == "" {
		return "", errors.New("--sub is required (or --token-file, or --token-url for a real identity provider)")
	}
	return "dev", nil
}

// obtained is a token and, when known, its expiry.
type obtained struct {
	token  string
	expiry time.Time // zero: unknown
}

// get obtains the token. Every flag is checked before any file is
// touched or any request made.
func (ts *tokenSource) get(ctx context.Context) (obtained, error) {
	mode, err := ts.mode()
	if err != nil {
		return obtained{}, err
	}
	switch mode {
	case "file":
		tok, err := readTokenFile(ts.tokenFile)
		if err != nil {
			return obtained{}, err
		}
		exp := jwtExpiry(tok)
		if !exp.IsZero() && !exp.After(time.Now()) {
			return obtained{}, fmt.Errorf("the token in %s expired at %s", ts.tokenFile, exp.UTC().Format(time.RFC3339))
		}
		return obtained{token: tok, expiry: exp}, nil
	case "oauth2":
		return ts.clientCredentials(ctx)
	}
	cl, err := identity.ParseClaimFlags(ts.claims)
	if err != nil {
		return obtained{}, err
	}
	if ts.ttl <= 0 {
		return obtained{}, errors.New("--ttl must be positive")
	}
	dev, err := identity.LoadOrCreateDevKey(ts.keyPath)
	if err != nil {
		return obtained{}, err
	}
	tok, err := dev.Mint(ts.issuer, ts.audience, ts.sub, cl, ts.ttl)
	if err != nil {
		return obtained{}, err
	}
	return obtained{token: tok, expiry: jwtExpiry(tok)}, nil
}

// clientCredentials runs the client credentials grant against the
// identity provider (golang.org/x/oauth2/clientcredentials: client
// authentication per RFC 6749 §2.3.1, Basic first, falling back to the
// request body).
func (ts *tokenSource) clientCredentials(ctx context.Context) (obtained, error) {
	var secret string
	if ts.secretFile != "" {
		b, err := readTokenFile(ts.secretFile)
		if err != nil {
			return obtained{}, fmt.Errorf("--client-secret-file: %w", err)
		}
		secret = b
	} else {
		secret = os.Getenv(ts.secretEnv)
		if secret == "" {
			return obtained{}, fmt.Errorf("--client-secret-env: $%s is empty or unset", ts.secretEnv)
		}
	}
	cc := clientcredentials.Config{
		ClientID:     ts.clientID,
		ClientSecret: secret,
		TokenURL:     ts.tokenURL,
		Scopes:       ts.scopes,
	}
	if ts.changed("audience") {
		cc.EndpointParams = url.Values{"audience": {ts.audience}}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := cc.Token(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return obtained{}, fmt.Errorf("token endpoint %s refused the client credentials: %s %s", ts.tokenURL, re.ErrorCode, re.ErrorDescription)
		}
		return obtained{}, fmt.Errorf("token endpoint %s: %w", ts.tokenURL, err)
	}
	if tok.AccessToken == "" {
		return obtained{}, fmt.Errorf("token endpoint %s returned no access token", ts.tokenURL)
	}
	if tt := tok.Type(); !strings.EqualFold(tt, "bearer") {
		return obtained{}, fmt.Errorf("token endpoint %s returned a %q token, want a bearer token", ts.tokenURL, tt)
	}
	// The JWT's own exp is authoritative; expires_in is the fallback
	// for opaque tokens.
	exp := jwtExpiry(tok.AccessToken)
	if exp.IsZero() {
		exp = tok.Expiry
	}
	return obtained{token: tok.AccessToken, expiry: exp}, nil
}

// execArgs returns the flags that make `warden token` obtain a token from
// the same source, with file paths made absolute: kubectl runs the plugin
// from whatever directory kubectl was started in.
func (ts *tokenSource) execArgs() ([]string, error) {
	mode, err := ts.mode()
	if err != nil {
		return nil, err
	}
	abs := func(p string) (string, error) {
		a, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("kubeconfig: %w", err)
		}
		return a, nil
	}
	var args []string
	switch mode {
	case "file":
		p, err := abs(ts.tokenFile)
		if err != nil {
			return nil, err
		}
		args = append(args, "--token-file", p)
	case "oauth2":
		args = append(args, "--token-url", ts.tokenURL, "--client-id", ts.clientID)
		if ts.secretFile != "" {
			p, err := abs(ts.secretFile)
			if err != nil {
				return nil, err
			}
			args = append(args, "--client-secret-file", p)
		} else {
			args = append(args, "--client-secret-env", ts.secretEnv)
		}
		if ts.changed("audience") {
			args = append(args, "--audience", ts.audience)
		}
		for _, s := range ts.scopes {
			args = append(args, "--scope", s)
		}
	default:
		// Check what minting would check, so a broken plugin is refused
		// now rather than at kubectl's first request.
		if _, err := identity.ParseClaimFlags(ts.claims); err != nil {
			return nil, err
		}
		if ts.ttl <= 0 {
			return nil, errors.New("--ttl must be positive")
		}
		p, err := abs(ts.keyPath)
		if err != nil {
			return nil, err
		}
		args = append(args, "--issuer-key", p, "--issuer", ts.issuer, "--audience", ts.audience, "--sub", ts.sub)
		for _, c := range ts.claims {
			args = append(args, "--claim", c)
		}
		args = append(args, "--ttl", ts.ttl.String())
	}
	return args, nil
}

func tokenCmd() *cobra.Command {
	var (
		ts       tokenSource
		execCred bool
	)
	cmd := &cobra.Command{
		Use:   "token --issuer-key KEY --sub agent-1 --claim groups=analysts --ttl 15m",
		Short: "Mint a token from the development issuer (never for production), or fetch one; print it or an ExecCredential for kubectl",
		Long: `Print an access token for an agent.

By default the token is minted by the development issuer's key (created if
missing). Such tokens are accepted by a warden whose identity.oidc lists the
development issuer, as 'warden demo' does. Never use them in production.

  --token-file PATH    print the token in PATH (refused when its exp has passed)
  --token-url URL --client-id ID (--client-secret-file F | --client-secret-env VAR)
                       [--audience A] [--scope S]...
                       fetch a token from a real identity provider with the
                       OAuth 2.0 client credentials grant

--exec-credential prints a kubectl ExecCredential (client.authentication.k8s.io/v1)
instead of the bare token, so that 'warden token' is a kubectl exec credential
plugin; 'warden kubeconfig' writes the kubeconfig that runs it. Its
expirationTimestamp is the token's exp, so kubectl asks again only when the
token expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			got, err := ts.get(cmd.Context())
			if err != nil {
				return fmt.Errorf("token: %w", err)
			}
			if !execCred {
				fmt.Fprintln(cmd.OutOrStdout(), got.token)
				return nil
			}
			return writeExecCredential(cmd.OutOrStdout(), got)
		},
	}
	ts.register(cmd.Flags())
	cmd.Flags().BoolVar(&execCred, "exec-credential", false, "print a kubectl ExecCredential (JSON) instead of the bare token")
	return cmd
}

// execCredential is client.authentication.k8s.io/v1 ExecCredential, the
// part a plugin writes
// (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#input-and-output-formats).
type execCredential struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Status     execCredentialStatus `json:"status"`
}

type execCredentialStatus struct {
	Token               string `json:"token"`
	ExpirationTimestamp string `json:"expirationTimestamp,omitempty"`
}

func writeExecCredential(w io.Writer, got obtained) error {
	// kubectl says which version it expects in KUBERNETES_EXEC_INFO; it
	// rejects an answer in another. The kubeconfig warden writes asks for
	// v1; a hand-written one may still ask for v1beta1, whose output
	// format is the same.
	apiVersion := execCredentialAPIVersion
	if info := os.Getenv("KUBERNETES_EXEC_INFO"); info != "" {
		var in struct {
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal([]byte(info), &in); err != nil {
			return fmt.Errorf("token: KUBERNETES_EXEC_INFO: %w", err)
		}
		switch in.APIVersion {
		case execCredentialAPIVersion, "client.authentication.k8s.io/v1beta1":
			apiVersion = in.APIVersion
		default:
			return fmt.Errorf("token: kubectl asks for an ExecCredential of %q; warden speaks %s (and v1beta1)", in.APIVersion, execCredentialAPIVersion)
		}
	}
	ec := execCredential{APIVersion: apiVersion, Kind: "ExecCredential", Status: execCredentialStatus{Token: got.token}}
	if !got.expiry.IsZero() {
		ec.Status.ExpirationTimestamp = got.expiry.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(ec)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readTokenFile reads a token or secret from a file, bounded (by ops.go's
// maxTokenFileBytes), without the surrounding white space (a trailing
// newline above all).
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxTokenFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxTokenFileBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("%s holds more than one line or word", path)
	}
	return s, nil
}

// jwtExpiry returns the exp claim of a JWT, unverified (the plugin only
// tells kubectl when to ask again; warden verifies the token), or the zero
// time when tok is not a JWT with a numeric exp.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp *json.Number `json:"exp"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c.Exp == nil {
		return time.Time{}
	}
	f, err := c.Exp.Float64()
	if err != nil || f <= 0 || f > 1<<40 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}
