"""Pure ``nn.Module`` building blocks shared by the methods (scvi-tools style)."""
