"""The API: ZStack's REST v1 and legacy RPC, generated from API message definitions."""
