package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/identity"
)

// Defaults shared by `warden token` and `warden demo`, so a token minted
// with no flags works against the demo.
const (
	defaultDevIssuer   = "http://127.0.0.1:5556"
	defaultDevAudience = "warden"
	defaultDevKey      = "warden-dev-issuer.pem"
)

func tokenCmd() *cobra.Command {
	var (
		keyPath, issuer, audience, sub string
		claims                         []string
		ttl                            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token --issuer-key KEY --sub agent-1 --claim groups=analysts --ttl 15m",
		Short: "Mint a token from the development issuer (never for production)",
		Long: `Mint an access token signed by the development issuer's key (created if
missing). Tokens are accepted by a warden whose identity.oidc lists the
development issuer, as 'warden demo' does. Never use this in production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sub == "" {
				return fmt.Errorf("token: --sub is required")
			}
			// Check every flag before touching the key file.
			cl, err := identity.ParseClaimFlags(claims)
			if err != nil {
				return err
			}
			if ttl <= 0 {
				return fmt.Errorf("token: --ttl must be positive")
			}
			dev, err := identity.LoadOrCreateDevKey(keyPath)
			if err != nil {
				return err
			}
			tok, err := dev.Mint(issuer, audience, sub, cl, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "issuer-key", defaultDevKey, "development issuer key file (PEM; created if missing)")
	cmd.Flags().StringVar(&issuer, "issuer", defaultDevIssuer, "issuer URL (iss)")
	cmd.Flags().StringVar(&audience, "audience", defaultDevAudience, "audience (aud)")
	cmd.Flags().StringVar(&sub, "sub", "", "subject (sub)")
	cmd.Flags().StringArrayVar(&claims, "claim", nil, "extra claim key=value (repeat a key for a list; groups is always a list)")
	cmd.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "lifetime")
	return cmd
}
