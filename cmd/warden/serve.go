package main

import (
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

func serveCmd() *cobra.Command {
	var path, cpuProfile, memProfile string
	cmd := &cobra.Command{
		Use:   "serve --config warden.yaml",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			if memProfile != "" {
				defer func() {
					if f, err := os.Create(memProfile); err == nil {
						pprof.Lookup("allocs").WriteTo(f, 0)
						f.Close()
					}
				}()
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer func() {
					pprof.StopCPUProfile()
					f.Close()
				}()
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			gw, err := gateway.New(cmd.Context(), cfg, gateway.Options{Logger: log})
			if err != nil {
				return err
			}
			if a := gw.PostgresAddr(); a != nil {
				log.Info("postgres listener ready", "addr", a.String())
			}
			if a := gw.HTTPAddr(); a != nil {
				log.Info("http listener ready", "addr", a.String())
			}
			<-cmd.Context().Done()
			log.Info("shutting down")
			return gw.Close()
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "warden.yaml", "configuration file")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until shutdown (for benchmarks)")
	cmd.Flags().StringVar(&memProfile, "memprofile", "", "write an allocation profile to this file at shutdown (for benchmarks)")
	return cmd
}
