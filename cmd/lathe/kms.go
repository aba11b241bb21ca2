package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/kms"
)

// openKMS starts KMS over IAM's store, with the master key of LATHE_MASTER_KEY or, when unset, of
// <data dir>/master.key (created on first start).
func openKMS(store iam.Store, dataDir, region, account string, logger *slog.Logger) (*kms.Service, error) {
	master, err := kms.LoadMasterKey(os.Getenv("LATHE_MASTER_KEY"), dataDir)
	if err != nil {
		return nil, fmt.Errorf("kms master key: %w", err)
	}
	return kms.New(kms.Config{Store: store, Region: region, AccountID: account, MasterKey: master, Logger: logger})
}
