"""Where records go when the function gives up on them.

AWS's failure documents, and the SQS, SNS, S3 and kafka:// writers that deliver them.
"""
