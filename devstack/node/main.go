// Command imm-node is the devstack's real Kubernetes node in one multi-call binary: the
// upstream kubelet and kube-proxy commands, chosen by the first argument, plus `cri-reset`,
// which stops and removes every pod sandbox of a CRI runtime (what `kubeadm reset` does with
// crictl), so `make devstack-down` leaves no container, network namespace or mount behind.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	remote "k8s.io/cri-client/pkg"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func runCobra(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

// criReset stops, then removes, every pod sandbox the runtime at endpoint knows; the runtime
// tears down each sandbox's containers and network (CNI DEL) as part of that.
func criReset(endpoint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runtime, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(endpoint).
		WithConnectionTimeout(10 * time.Second).
		Build(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	sandboxes, err := runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	for _, sandbox := range sandboxes {
		name := sandbox.GetMetadata().GetNamespace() + "/" + sandbox.GetMetadata().GetName()
		if err := runtime.StopPodSandbox(ctx, sandbox.GetId()); err != nil {
			return fmt.Errorf("stop pod sandbox %s: %w", name, err)
		}
		if err := runtime.RemovePodSandbox(ctx, sandbox.GetId()); err != nil {
			return fmt.Errorf("remove pod sandbox %s: %w", name, err)
		}
		fmt.Printf("removed pod sandbox %s\n", name)
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imm-node kubelet|kube-proxy|cri-reset|version [args]")
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	switch sub {
	case "kubelet":
		os.Exit(runCobra(kubelet.NewKubeletCommand(context.Background()), args))
	case "kube-proxy":
		os.Exit(runCobra(proxy.NewProxyCommand(), args))
	case "cri-reset":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: imm-node cri-reset unix:///path/to/containerd.sock")
			os.Exit(2)
		}
		if err := criReset(args[0]); err != nil {
			fmt.Fprintf(os.Stderr, "cri-reset: %v\n", err)
			os.Exit(1)
		}
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		fmt.Fprintf(os.Stderr, "imm-node: unknown component %q\n", sub)
		os.Exit(2)
	}
}
