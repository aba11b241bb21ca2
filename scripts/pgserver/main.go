// Command pgserver is a throwaway PostgreSQL for scripts (the multi-process tests, the end-to-end
// journey on PostgreSQL): it starts a cluster of its own in a temporary directory (package pgtest),
// creates a database, prints its postgres:// URL on stdout, and serves until SIGTERM or SIGINT, when
// it stops the server and removes the directory. Pass the URL to `lathe serve --database`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/lathe-ml/lathe/internal/store/pgtest"
)

func main() {
	db := flag.String("db", "lathe", "name of the database to create")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := pgtest.StartCluster(ctx)
	if err != nil {
		log.Fatalf("pgserver: %v", err)
	}
	url, err := c.CreateDatabase(ctx, *db)
	if err != nil {
		c.Stop()
		log.Fatalf("pgserver: %v", err)
	}
	fmt.Println(url)
	<-ctx.Done()
	if err := c.Stop(); err != nil {
		log.Fatalf("pgserver: %v", err)
	}
}
