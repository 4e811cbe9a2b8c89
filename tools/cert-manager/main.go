// Command cert-manager-controller runs cert-manager v1.21.2's own controllers (certificates, certificate
// requests with the SelfSigned and CA issuers, the approver, Issuers/ClusterIssuers and the Ingress shim)
// against a kubeconfig: the subset of upstream's controller binary the hermetic cluster needs. No ACME, Vault,
// Venafi or Gateway API; no leader election.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Each registers its controller (controllerpkg.Register) or issuer (issuer.RegisterIssuer) in init.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// The controllers upstream enables by default, less those of the features left out above.
var defaultControllers = []string{
	"certificaterequests-approver", "certificaterequests-issuer-ca", "certificaterequests-issuer-selfsigned",
	"certificates-issuing", "certificates-key-manager", "certificates-readiness", "certificates-request-manager",
	"certificates-revision-manager", "certificates-trigger", "ingress-shim", "clusterissuers", "issuers",
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace of the Secrets a ClusterIssuer refers to")
	controllers := flag.String("controllers", strings.Join(defaultControllers, ","), "controllers to run")
	health := flag.String("health-listen-address", "127.0.0.1:9403", "/healthz (ok once every controller started)")
	klog.InitFlags(nil)
	flag.Parse()
	logf.InitLogs()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cert-manager-controller")
	if err := run(ctx, *kubeconfig, *clusterResourceNamespace, strings.Split(*controllers, ","), *health); err != nil {
		klog.ErrorS(err, "cert-manager-controller failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, clusterResourceNamespace string, names []string, health string) error {
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: clusterResourceNamespace},
		IngressShimOptions: controllerpkg.IngressShimOptions{DefaultIssuerKind: "Issuer", DefaultIssuerGroup: "cert-manager.io"},
		CertificateOptions: controllerpkg.CertificateOptions{
			// Upstream's defaults (--certificate-request-minimum/maximum-backoff-duration).
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return err
	}
	known := controllerpkg.Known()
	var started []controllerpkg.Interface
	for _, n := range names {
		constructor, ok := known[n]
		if !ok {
			return fmt.Errorf("unknown controller %q (built in: %s)", n, strings.Join(sortedKeys(known), ", "))
		}
		c, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", n, err)
		}
		started = append(started, c)
	}
	// The constructors registered their informers on the factories every built Context shares.
	shared, err := factory.Build()
	if err != nil {
		return err
	}
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	var wg sync.WaitGroup
	errs := make(chan error, len(started))
	for i, c := range started {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(5, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", names[i], err)
			}
		}()
	}
	srv := &http.Server{Addr: health, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(
		func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			errs <- err
		}
	}()
	klog.InfoS("controllers started", "controllers", names)
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close()
	wg.Wait()
	return nil
}

func sortedKeys(m map[string]controllerpkg.Constructor) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
