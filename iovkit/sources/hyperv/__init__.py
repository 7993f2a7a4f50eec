"""Hyper-V sources: the collector bundle, pasted Format-List text and Get-NetView captures, all mapped by one
normaliser (`normalize.build_snapshot`); `local` and `winrm` run the collector script on a host."""
