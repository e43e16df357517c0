package main

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/warden-gateway/warden/internal/config"
)

// kubeconfig is the part of a kubeconfig file (clientcmd's v1.Config)
// that `warden kubeconfig` writes. Field names and shapes follow
// k8s.io/client-go/tools/clientcmd/api/v1.
type kubeconfig struct {
	APIVersion     string            `yaml:"apiVersion"`
	Kind           string            `yaml:"kind"`
	Clusters       []kubeconfigNamed `yaml:"clusters"`
	Contexts       []kubeconfigNamed `yaml:"contexts"`
	Users          []kubeconfigNamed `yaml:"users"`
	CurrentContext string            `yaml:"current-context"`
	Preferences    struct{}          `yaml:"preferences"`
}

type kubeconfigNamed struct {
	Name    string             `yaml:"name"`
	Cluster *kubeconfigCluster `yaml:"cluster,omitempty"`
	Context *kubeconfigContext `yaml:"context,omitempty"`
	User    *kubeconfigUser    `yaml:"user,omitempty"`
}

type kubeconfigCluster struct {
	Server                   string `yaml:"server"`
	CertificateAuthorityData string `yaml:"certificate-authority-data,omitempty"`
}

type kubeconfigContext struct {
	Cluster   string `yaml:"cluster"`
	User      string `yaml:"user"`
	Namespace string `yaml:"namespace,omitempty"`
}

type kubeconfigUser struct {
	Token string          `yaml:"token,omitempty"`
	Exec  *kubeconfigExec `yaml:"exec,omitempty"`
}

// kubeconfigExec is an exec credential plugin (ExecConfig).
type kubeconfigExec struct {
	APIVersion         string   `yaml:"apiVersion"`
	Command            string   `yaml:"command"`
	Args               []string `yaml:"args"`
	InstallHint        string   `yaml:"installHint,omitempty"`
	InteractiveMode    string   `yaml:"interactiveMode"`
	ProvideClusterInfo bool     `yaml:"provideClusterInfo"`
}

func kubeconfigCmd() *cobra.Command {
	var (
		path, target, server, caFile, staticToken, namespace, name string
		useExec                                                    bool
		ts                                                         tokenSource
	)
	cmd := &cobra.Command{
		Use:   "kubeconfig --config warden.yaml --target cluster [--server URL] (--token T | [--exec] TOKEN SOURCE FLAGS)",
		Short: "Print a kubeconfig that points kubectl at a kubernetes target through warden",
		Long: `Print a kubeconfig whose cluster is a kubernetes target reached through warden:
server https://<listen.http or --server>/t/<target>, with the certificate of
the tls: block as its certificate authority. The configuration needs a tls:
block (or --server must be an https URL, with --certificate-authority if its
certificate is not signed by a CA kubectl trusts): kubectl sends a kubeconfig's
credentials only to https servers.

The user is either a static bearer token (--token T), or, by default, an exec
credential plugin: kubectl runs 'warden token --exec-credential' with the token
source flags given here, and asks again when the token expires:

  --sub S [--claim k=v]... [--issuer-key KEY --issuer URL --ttl D]
        mint from the development issuer (never for production)
  --token-file PATH
        a token written by something else (a CI job, a sidecar)
  --token-url URL --client-id ID (--client-secret-file F | --client-secret-env VAR)
        [--audience A] [--scope S]...
        the OAuth 2.0 client credentials grant against a real identity provider

Nothing is contacted: the output is only the file. Write it with
'warden kubeconfig ... > kubeconfig' and use 'kubectl --kubeconfig kubeconfig'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			var t *config.Target
			for i := range cfg.Targets {
				if cfg.Targets[i].Name == target {
					t = &cfg.Targets[i]
				}
			}
			if t == nil {
				return fmt.Errorf("kubeconfig: unknown target %q", target)
			}
			if t.Type != "kubernetes" {
				return fmt.Errorf("kubeconfig: target %q is %s %s target; kubeconfig is for kubernetes targets", target, article(t.Type), t.Type)
			}
			base, err := kubeServerBase(cfg, server)
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			cluster := &kubeconfigCluster{Server: base.String() + "/t/" + url.PathEscape(target)}
			// Without either, kubectl verifies the server with the
			// system's roots (a proxy with a public certificate).
			ca := caFile
			if ca == "" && cfg.TLS != nil {
				ca = cfg.Resolve(cfg.TLS.Cert)
			}
			if ca != "" {
				data, err := readPEMCertificates(ca)
				if err != nil {
					return fmt.Errorf("kubeconfig: certificate authority: %w", err)
				}
				cluster.CertificateAuthorityData = base64.StdEncoding.EncodeToString(data)
			}

			user := &kubeconfigUser{}
			switch {
			case staticToken != "":
				if useExec {
					return errors.New("kubeconfig: --token and --exec are two kinds of user; give one")
				}
				for _, f := range []string{"issuer-key", "issuer", "audience", "sub", "claim", "ttl", "token-file", "token-url", "client-id", "client-secret-file", "client-secret-env", "scope"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("kubeconfig: --%s is for the exec plugin; with --token the kubeconfig holds that token", f)
					}
				}
				user.Token = staticToken
			default:
				args, err := ts.execArgs()
				if err != nil {
					return fmt.Errorf("kubeconfig: exec plugin: %w", err)
				}
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("kubeconfig: the warden binary's path: %w", err)
				}
				user.Exec = &kubeconfigExec{
					APIVersion:      execCredentialAPIVersion,
					Command:         self,
					Args:            append([]string{"token", "--exec-credential"}, args...),
					InstallHint:     "this kubeconfig gets its token from the warden CLI at " + self + "; write a new one with 'warden kubeconfig' where warden is installed",
					InteractiveMode: "Never",
				}
			}

			if name == "" {
				name = "warden-" + target
			}
			kc := kubeconfig{
				APIVersion:     "v1",
				Kind:           "Config",
				Clusters:       []kubeconfigNamed{{Name: name, Cluster: cluster}},
				Contexts:       []kubeconfigNamed{{Name: name, Context: &kubeconfigContext{Cluster: name, User: name, Namespace: namespace}}},
				Users:          []kubeconfigNamed{{Name: name, User: user}},
				CurrentContext: name,
			}
			var out bytes.Buffer
			enc := yaml.NewEncoder(&out)
			enc.SetIndent(2)
			if err := enc.Encode(&kc); err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			if err := enc.Close(); err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			_, err = cmd.OutOrStdout().Write(out.Bytes())
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "warden.yaml", "configuration file")
	cmd.Flags().StringVar(&target, "target", "", "the kubernetes target")
	cmd.MarkFlagRequired("target")
	cmd.Flags().StringVar(&server, "server", "", "warden's address as kubectl reaches it: host:port or a base URL (default: listen.http)")
	cmd.Flags().StringVar(&caFile, "certificate-authority", "", "PEM certificates kubectl trusts for an https server (default: the tls: certificate)")
	cmd.Flags().StringVar(&staticToken, "token", "", "put this access token in the kubeconfig instead of an exec plugin")
	cmd.Flags().BoolVar(&useExec, "exec", false, "use the exec credential plugin 'warden token --exec-credential' (the default without --token)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "the context's default namespace")
	cmd.Flags().StringVar(&name, "name", "", "name of the cluster, user and context (default warden-<target>)")
	ts.register(cmd.Flags())
	return cmd
}

// kubeServerBase is the URL kubectl reaches warden's http listener at,
// without a trailing slash. It must be https (see below).
func kubeServerBase(cfg *config.Config, server string) (*url.URL, error) {
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	var u *url.URL
	switch {
	case strings.Contains(server, "://"):
		var err error
		if u, err = url.Parse(server); err != nil {
			return nil, fmt.Errorf("--server: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("--server %q: want http(s)://host[:port][/path]", server)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
	case server != "":
		if _, _, err := net.SplitHostPort(server); err != nil {
			return nil, fmt.Errorf("--server %q: want host:port or a URL: %w", server, err)
		}
		u = &url.URL{Scheme: scheme, Host: server}
	default:
		if cfg.Listen.HTTP == "" {
			return nil, errors.New("the configuration has no listen.http, where kubernetes targets are served")
		}
		host, port, err := net.SplitHostPort(cfg.Listen.HTTP)
		if err != nil {
			return nil, fmt.Errorf("listen.http %q: %w", cfg.Listen.HTTP, err)
		}
		if port == "0" {
			return nil, fmt.Errorf("listen.http %q has no fixed port; give --server", cfg.Listen.HTTP)
		}
		// An all-interfaces listener is reached on this machine; a
		// certificate names "localhost" more often than an address.
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
			if scheme == "https" {
				host = "localhost"
			}
		}
		u = &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}
	}
	// kubectl reads a kubeconfig's credentials (token, exec plugin, client
	// certificate) only for an https server: client-go's clientcmd skips
	// them otherwise ("only try to read the auth information if we are
	// secure", DirectClientConfig.ClientConfig), so an http kubeconfig
	// would send every request without a token, to be refused by warden.
	if u.Scheme != "https" {
		return nil, fmt.Errorf("%s is not https: kubectl sends no credentials to an http server (client-go reads a kubeconfig's user only for https); configure tls: in %s, or give an https --server (a TLS-terminating proxy in front of warden)", u.String(), cfg.Path)
	}
	return u, nil
}

// isLoopbackHost reports whether host names only this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readPEMCertificates reads a PEM file and returns its CERTIFICATE blocks
// only: the tls: cert file must never carry a private key into a
// kubeconfig, even if someone put key and certificate in one file.
func readPEMCertificates(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []byte
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(b)...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}
