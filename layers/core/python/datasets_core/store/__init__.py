"""DynamoDB access. Nothing outside this package calls DynamoDB.

User-supplied names and values reach DynamoDB only as ExpressionAttributeNames /
ExpressionAttributeValues; botocore errors become domain exceptions here.
"""
