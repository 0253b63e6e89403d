# opsd's policy as a managed policy, and (when principals are named) a role opsd runs as.

resource "aws_iam_policy" "opsd" {
  name        = var.name
  description = "opsd: the AWS operations it calls, on the resources it manages"
  policy      = data.aws_iam_policy_document.opsd.json
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.trusted_principal_arns
    }
  }
}

resource "aws_iam_role" "opsd" {
  count              = length(var.trusted_principal_arns) > 0 ? 1 : 0
  name               = var.name
  description        = "The role opsd runs as"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "opsd" {
  count      = length(aws_iam_role.opsd)
  role       = aws_iam_role.opsd[0].name
  policy_arn = aws_iam_policy.opsd.arn
}
