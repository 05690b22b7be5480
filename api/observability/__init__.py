"""What the server tells the people who run it: request ids and the request context
(`requests`), log formatting (`logs`) and Prometheus metrics (`metrics`)."""
